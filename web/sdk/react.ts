import { useCallback, useSyncExternalStore } from 'react';
import { watch } from '../client.js';
import type { ConnectionState, SectionTextUpdate } from '../client.js';
import { watchBooks } from './books.js';
import type { BooksUpdate, Transport, WatchBooksOptions } from './books.js';
import { FrameBatch } from './frame-batch.js';
import type { BookProgress } from './guard.js';

/**
 * `booksai-progress/react`: hooks over watchBooks(). Components asking for the same books with
 * the same options share one stream, kept open while any of them is mounted (and a moment
 * after, so StrictMode's mount-unmount-mount opens one). Each hook re-renders at most once per
 * animation frame, and never after unmount.
 */

export interface BookProgressOptions extends WatchBooksOptions {
  /** Suspend (throw to the nearest <Suspense>) until the first state of every book has arrived. */
  suspense?: boolean;
}

export interface BookProgressResult {
  readonly progress: BookProgress | undefined;
  readonly connection: ConnectionState;
  readonly transport: Transport;
  readonly error: Error | null;
}

export interface BooksResult {
  readonly books: ReadonlyMap<string, BookProgress>;
  readonly connection: ConnectionState;
  readonly transport: Transport;
  readonly error: Error | null;
}

export interface BookTextResult {
  /** The chapter's sections' text so far, by section number. */
  readonly sections: ReadonlyMap<number, string>;
  /** All the sections' text, in order, separated by blank lines. */
  readonly text: string;
  readonly connection: ConnectionState;
  readonly error: Error | null;
}

/** How long a stream nobody watches stays open: StrictMode remounts and quick route changes reuse it. */
const LINGER_MS = 1_000;

interface Source<T> {
  snapshot: T;
  ready: boolean;
  readonly whenReady: Promise<void>;
  readonly listeners: Set<() => void>;
  timer: ReturnType<typeof setTimeout> | null;
  close(): void;
}

const sources = new Map<string, Source<unknown>>();

/** The one source for `key`, opened on first use; closed LINGER_MS after its last listener leaves. */
function acquire<T>(key: string, open: (emit: (snapshot: T, ready: boolean) => void) => { initial: T; close(): void }): Source<T> {
  const existing = sources.get(key) as Source<T> | undefined;
  if (existing) return existing;
  let markReady = () => {};
  const source: Source<T> = {
    snapshot: undefined as T,
    ready: false,
    whenReady: new Promise<void>((resolve) => (markReady = resolve)),
    listeners: new Set(),
    timer: null,
    close: () => {},
  };
  const opened = open((snapshot, ready) => {
    source.snapshot = snapshot;
    if (ready && !source.ready) {
      source.ready = true;
      markReady();
    }
    for (const listener of [...source.listeners]) listener();
  });
  source.snapshot = opened.initial;
  source.close = () => {
    sources.delete(key);
    opened.close();
  };
  sources.set(key, source as Source<unknown>);
  linger(source); // a render that suspends or never commits must not leave it open
  return source;
}

function linger(source: Source<unknown>): void {
  if (source.timer) clearTimeout(source.timer);
  source.timer = setTimeout(() => {
    if (source.listeners.size === 0) source.close();
  }, LINGER_MS);
}

function useSource<T>(key: string, open: Parameters<typeof acquire<T>>[1], suspense: boolean | undefined): T {
  const source = acquire(key, open);
  const subscribe = useCallback(
    (listener: () => void) => {
      const s = sources.get(key) === source ? source : acquire(key, open);
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      s.listeners.add(listener);
      return () => {
        s.listeners.delete(listener);
        if (s.listeners.size === 0) linger(s as Source<unknown>);
      };
    },
    // open is a fresh closure each render; the key names what it opens.
    [key, source],
  );
  const snapshot = useSyncExternalStore(subscribe, () => source.snapshot, () => source.snapshot);
  if (suspense && !source.ready) throw source.whenReady;
  return snapshot;
}

function keyOf(kind: string, ids: readonly string[] | 'all', options: object): string {
  const plain = Object.entries(options).filter(([, v]) => typeof v !== 'function' && typeof v !== 'object');
  return JSON.stringify([kind, ids === 'all' ? ids : [...ids].sort(), plain.sort()]);
}

function openBooks(ids: readonly string[] | 'all', options: BookProgressOptions) {
  return (emit: (update: BooksUpdate, ready: boolean) => void) => {
    const watching = watchBooks(ids, (update) => {
      const ready = ids === 'all' || update.connection === 'closed' || ids.every((id) => update.books.has(id));
      emit(update, ready);
    }, options);
    return { initial: watching.current, close: () => watching.close() };
  };
}

/** The newest state of one book, the connection's state and transport, and the last error. */
export function useBookProgress(bookId: string, options: BookProgressOptions = {}): BookProgressResult {
  const update = useSource(keyOf('books', [bookId], options), openBooks([bookId], options), options.suspense);
  return { progress: update.books.get(bookId), connection: update.connection, transport: update.transport, error: update.error };
}

/** The newest state of several books (or 'all'), on one stream. */
export function useBooks(bookIds: readonly string[] | 'all', options: BookProgressOptions = {}): BooksResult {
  const update = useSource(keyOf('books', bookIds, options), openBooks(bookIds, options), options.suspense);
  return { books: update.books, connection: update.connection, transport: update.transport, error: update.error };
}

/** The live text of one chapter as it is written (merged, at most once per animation frame). */
export function useBookText(bookId: string, chapter: number, options: Omit<WatchBooksOptions, 'share' | 'sharedWorkerUrl'> = {}): BookTextResult {
  return useSource(keyOf(`text:${chapter}`, [bookId], options), openText(bookId, chapter, options), false);
}

function openText(bookId: string, chapter: number, options: Omit<WatchBooksOptions, 'share' | 'sharedWorkerUrl'>) {
  return (emit: (result: BookTextResult, ready: boolean) => void) => {
    const sections = new Map<number, string>();
    let result: BookTextResult = { sections: new Map(), text: '', connection: 'connecting', error: null };
    const batch = new FrameBatch(() => {
      const ordered = [...sections.entries()].sort(([a], [b]) => a - b);
      result = { ...result, sections: new Map(ordered), text: ordered.map(([, t]) => t).join('\n\n') };
      emit(result, true);
    }, options);
    const watching = watch([bookId], () => {}, {
      ...options,
      text: true,
      onText: (update: SectionTextUpdate) => {
        if (update.chapter !== chapter) return;
        sections.set(update.section, update.text);
        batch.mark();
      },
      onConnection: (connection) => {
        result = { ...result, connection, error: connection === 'offline' ? new Error('the progress server does not answer') : null };
        batch.mark();
      },
    });
    return {
      initial: result,
      close: () => {
        batch.close();
        watching.close();
      },
    };
  };
}
