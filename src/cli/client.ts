import { loadClientConfig } from '../config.js';
import { CliError, EXIT_FAILED, EXIT_USAGE } from './args.js';

/** How long one API request may take before the server counts as unreachable. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** Where the API is, and how to authenticate to it. */
export interface Target {
  /** Base URL, base path included, no trailing slash. */
  readonly url: string;
  readonly token: string | null;
  /** X-Tenant, for a PUBLISH_TOKEN request with authentication on. */
  readonly tenant?: string;
}

/** `--url` and `--token`, shared by the subcommands that talk to a server. */
export const TARGET_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
} as const;

export const TARGET_HELP = `  --url URL      the server (default: BOOKSAI_URL, else http://127.0.0.1:$PORT$BASE_PATH)
  --token TOKEN  bearer token (default: BOOKSAI_TOKEN; none in open mode)`;

/** The target from the flags, falling back to the environment. */
export function targetFrom(values: { url?: string | undefined; token?: string | undefined }, tenant?: string): Target {
  let config;
  try {
    config = loadClientConfig(process.env);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  let url = config.url;
  if (values.url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(values.url);
    } catch {
      throw new CliError(`--url must be an http(s) URL like http://127.0.0.1:3000 (got "${values.url}")`);
    }
    if (!/^https?:$/.test(parsed.protocol)) throw new CliError(`--url must be an http(s) URL (got "${values.url}")`);
    url = values.url.replace(/\/+$/, '');
  }
  return { url, token: values.token ?? config.token, ...(tenant === undefined ? {} : { tenant }) };
}

export function headersFor(target: Target, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(target.token === null ? {} : { Authorization: `Bearer ${target.token}` }),
    ...(target.tenant === undefined ? {} : { 'X-Tenant': target.tenant }),
    ...extra,
  };
}

/** The server's reason from its error envelope, as "401 unauthorized: …"; the status alone when the body is not one. */
export async function refusal(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.message === 'string') return `${res.status} ${String(body.error.code)}: ${body.error.message}`;
  } catch {
    // not JSON: a proxy's page, say
  }
  return `${res.status} ${res.statusText}`.trim();
}

/** Why fetch failed, in a few words: "connect ECONNREFUSED 127.0.0.1:3000" rather than "fetch failed". */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const nested = (cause as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested[0] instanceof Error) return nested[0].message;
    return cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * One JSON API call; answers the envelope's `data` and the status. A server that cannot be
 * reached is exit 2, a refusal (4xx/5xx) exit 1, each with one line saying why.
 */
export async function callApi(target: Target, method: string, path: string, body?: unknown): Promise<{ status: number; data: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: headersFor(target, body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new CliError(`cannot reach the server at ${target.url}: ${networkReason(error)}`, EXIT_USAGE);
  }
  if (!res.ok) throw new CliError(await refusal(res), EXIT_FAILED);
  const envelope = (await res.json().catch(() => null)) as { data?: unknown } | null;
  return { status: res.status, data: envelope?.data ?? null };
}
