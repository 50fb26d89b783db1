import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

/**
 * A client generated from the server's OpenAPI document: openapi-fetch typed by the paths that
 * openapi-typescript wrote to schema.d.ts (`npm run docs:openapi`). Every path, parameter, body
 * and answer below is checked by tsc against the document.
 */
export type BookProgress = components['schemas']['BookProgress'];
export type ApiError = components['schemas']['Error'];

export function progressClient(baseUrl: string, token?: string) {
  return createClient<paths>({ baseUrl, headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
}

type Client = ReturnType<typeof progressClient>;

/** Publishes a partial update; the new state, or the refusal. */
export async function publish(client: Client, bookId: string, update: components['schemas']['PublishBody']): Promise<BookProgress | ApiError> {
  const { data, error } = await client.POST('/api/ai/progress/{bookId}', { params: { path: { bookId } }, body: update });
  return data ? data.data : error;
}

/** The latest state; `unchanged` for a 304 to `etag`. */
export async function poll(client: Client, bookId: string, etag?: string): Promise<{ state: BookProgress; etag: string | null } | 'unchanged' | ApiError> {
  const { data, error, response } = await client.GET('/api/ai/progress/{bookId}', {
    params: { path: { bookId }, header: etag === undefined ? {} : { 'if-none-match': etag } },
  });
  if (response.status === 304) return 'unchanged';
  return data ? { state: data.data, etag: response.headers.get('etag') } : (error as ApiError);
}

/** Starts a demo book and lists the tenant's books. */
export async function startAndList(client: Client, title: string): Promise<{ started: string; listed: string[] }> {
  const started = await client.POST('/api/books', { body: { title, chapters: 1, sectionsPerChapter: 1 } });
  if (!started.data) throw new Error(`start refused: ${started.error?.error.code}`);
  const listed = await client.GET('/api/books', { params: { query: { limit: 50 } } });
  return { started: started.data.data.bookId, listed: (listed.data?.data ?? []).map((book) => book.bookId) };
}

/** Never called: tsc must refuse each line, or the types are not the document's. */
export function refusedByTheTypes(client: Client): void {
  // @ts-expect-error an unknown field of the publish body (the schema is strict)
  const typo: components['schemas']['PublishBody'] = { overalProgress: 5 };
  // @ts-expect-error overallProgress is a number
  void client.POST('/api/ai/progress/{bookId}', { params: { path: { bookId: 'b' } }, body: { ...typo, overallProgress: '5' } });
  // @ts-expect-error a path the API does not have
  void client.GET('/api/ai/progres/{bookId}', { params: { path: { bookId: 'b' } } });
  // @ts-expect-error status is one of the four
  void client.POST('/api/ai/progress/{bookId}', { params: { path: { bookId: 'b' } }, body: { status: 'DONE' } });
  // @ts-expect-error the book id is required
  void client.GET('/api/books/{bookId}', { params: { path: {} } });
}
