/**
 * A `.` or `..` path segment, raw or percent-encoded (`%2e`, `.%2e`, …), between any of the
 * separators URL parsing honours (`/`, `\`, and their encodings). Such a path is refused with
 * 400 before routing: resolved, `/api/ai/progress/x/%2e%2e/%2e%2e/stream` would reach another
 * route than the one a proxy rule allowed.
 */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)(?:\.|%2e){1,2}(?:\/|\\|%2f|%5c|$)/i;

/** The answer to such a path: 400 with this code and message. */
export const DOT_SEGMENT_ERROR = { code: 'invalid_path', message: 'paths must not contain "." or ".." segments, raw or percent-encoded' } as const;

/** Whether the path part of a raw request URL (up to `?`, or `#`, which URL parsing also cuts at) holds a dot segment. */
export function hasDotSegment(url: string): boolean {
  const end = url.search(/[?#]/);
  return DOT_SEGMENT.test(end === -1 ? url : url.slice(0, end));
}
