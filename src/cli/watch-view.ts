import { MultiBar, Presets } from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import type { BookProgress } from '../progress/schema.js';
import { chapterText, etaText, stateLine } from './progress-text.js';

/** How `watch` shows what it hears: live bars on a terminal, plain lines elsewhere. */
export interface WatchView {
  /** A new state of a book (newer than any shown). */
  show(state: BookProgress): void;
  /** A note about the connection: reconnecting, waiting. */
  note(text: string): void;
  /** Ends the view (bars drawn a last time, timers stopped). */
  close(): void;
}

/** Longest book id shown in full before the bar; longer ones are cut with "…". */
const MAX_LABEL = 28;
/** The ETA counts down between updates. */
const REDRAW_MS = 1_000;

/** One cli-progress bar per book: id, bar, percent, step, chapter, ETA, and the latest message. */
export class BarView implements WatchView {
  readonly #multi: MultiBar;
  readonly #bars = new Map<string, { bar: SingleBar; state: BookProgress | null }>();
  readonly #timer: NodeJS.Timeout;
  readonly #width: number;

  constructor(bookIds: readonly string[], stream: NodeJS.WriteStream = process.stdout) {
    this.#width = Math.min(MAX_LABEL, Math.max(...bookIds.map((id) => id.length)));
    this.#multi = new MultiBar(
      {
        stream,
        format: '{book} {bar} {percentage}% | {step} | {chapter} | ETA {remaining} | {note}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        // Redraw only when something changed: a steady frame is easy to read and to capture.
        fps: 10,
      },
      Presets.shades_classic,
    );
    for (const id of bookIds) this.#bars.set(id, { bar: this.#multi.create(100, 0, this.#payload(id, null)), state: null });
    this.#timer = setInterval(() => this.#redrawEtas(), REDRAW_MS);
    this.#timer.unref();
  }

  show(state: BookProgress): void {
    const entry = this.#bars.get(state.bookId);
    if (!entry) return;
    entry.state = state;
    entry.bar.update(Math.floor(state.overallProgress), this.#payload(state.bookId, state));
  }

  note(text: string): void {
    this.#multi.log(`${text}\n`);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#multi.stop();
  }

  #redrawEtas(): void {
    for (const [id, entry] of this.#bars) if (entry.state) entry.bar.update(this.#payload(id, entry.state));
  }

  #payload(bookId: string, state: BookProgress | null) {
    const book = bookId.length > this.#width ? `${bookId.slice(0, this.#width - 1)}…` : bookId.padEnd(this.#width);
    if (state === null) return { book, step: 'waiting', chapter: '-', remaining: '-', note: 'waiting for the first update' };
    const note = state.status === 'ERROR' ? `ERROR: ${state.error ?? state.message}` : state.status === 'COMPLETE' ? 'COMPLETE' : state.message;
    return { book, step: state.generationStep, chapter: chapterText(state), remaining: etaText(state, Date.now()), note: note.replace(/\s+/g, ' ').slice(0, 60) };
  }
}

/** A line per state, for pipes and CI logs; connection notes go to stderr. */
export class LineView implements WatchView {
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;

  constructor(out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr) {
    this.#out = out;
    this.#err = err;
  }

  show(state: BookProgress): void {
    this.#out.write(`${stateLine(state, Date.now())}\n`);
  }

  note(text: string): void {
    this.#err.write(`${text}\n`);
  }

  close(): void {}
}
