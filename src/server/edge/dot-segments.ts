import { Refusal } from '../../refusal.js';

/**
 * A `.` or `..` path segment, raw or percent-encoded (`%2e`, `.%2e`, …), between any of the
 * separators URL parsing honours (`/`, `\`, and their encodings). Such a path is refused with
 * 400 before routing: resolved, `/api/ai/progress/x/%2e%2e/%2e%2e/stream` would reach another
 * route than the one a proxy rule allowed.
 */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)(?:\.|%2e){1,2}(?:\/|\\|%2f|%5c|$)/i;

/** The answer to such a path. */
export function dotSegmentRefusal(): Refusal {
  return new Refusal(400, 'invalid_path', 'paths must not contain "." or ".." segments, raw or percent-encoded');
}

/** Whether the path part of a raw request URL (up to `?`, or `#`, which URL parsing also cuts at) holds a dot segment. */
export function hasDotSegment(url: string): boolean {
  const end = url.search(/[?#]/);
  return DOT_SEGMENT.test(end === -1 ? url : url.slice(0, end));
}
