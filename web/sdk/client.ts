/**
 * `booksai-progress/client`: the browser (and Node) client of the progress server, with no
 * dependencies. `watchBooks()` is the render-safe entry (merged updates, at most once per
 * animation frame, optionally one connection for all tabs); `watch()` hands over every state.
 */
export { watch, reconnectDelay } from '../client.js';
export type { ConnectionState, WatchOptions, Watching, SectionTextUpdate } from '../client.js';
export { watchBooks } from './books.js';
export type { BooksUpdate, BooksWatching, Transport, WatchBooksOptions } from './books.js';
export { isTerminal, parseBookProgress } from './guard.js';
export type { BookProgress, Status, Step } from './guard.js';
