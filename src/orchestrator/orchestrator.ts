import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ProgressTracker } from '../progress/tracker.js';
import type { BookStore } from '../store/books.js';
import { rootMessage } from '../store/failures.js';
import type { BookSpec, Generator } from './generator.js';
import { startPipeline } from './pipeline.js';
import type { PipelineResult } from './pipeline.js';

export interface OrchestratorDeps {
  tracker: ProgressTracker;
  books: BookStore;
  generator: Generator;
  log: Logger;
}

export interface BookRequest {
  title: string;
  chapters: number;
  sectionsPerChapter: number;
  /** Who started it (`sub`), and the tenant the book belongs to from now on (null: none, open mode). */
  owner?: string | null;
  tenant?: string | null;
}

/** Starts book generations in the background and stops them at shutdown. */
export class Orchestrator {
  readonly #deps: OrchestratorDeps;
  readonly #running = new Map<string, Promise<PipelineResult>>();
  readonly #abort = new AbortController();

  constructor(deps: OrchestratorDeps) {
    this.#deps = deps;
  }

  get running(): number {
    return this.#running.size;
  }

  /**
   * Creates the book row (throws if Postgres is down) and starts generating it. Resolves once
   * the first state is published, so a client polls or watches the book right after.
   */
  async start(request: BookRequest): Promise<BookSpec> {
    const spec: BookSpec = {
      bookId: `bk_${randomBytes(8).toString('hex')}`,
      title: request.title,
      chapters: request.chapters,
      sectionsPerChapter: request.sectionsPerChapter,
    };
    const tenant = request.tenant ?? null;
    await this.#deps.books.createBook({ id: spec.bookId, title: spec.title, owner: request.owner ?? null, tenant });
    // Tracked before the first state is awaited, so a stop() meanwhile waits for it too.
    const started = startPipeline(spec, { ...this.#deps, signal: this.#abort.signal, writer: { tenant, anyTenant: true } });
    const run = started
      .then(({ finished }) => finished)
      .catch((error: unknown) => {
        this.#deps.log.error({ bookId: spec.bookId, err: rootMessage(error) }, 'book pipeline crashed');
        return 'ERROR' as const;
      })
      .finally(() => this.#running.delete(spec.bookId));
    this.#running.set(spec.bookId, run);
    await started;
    return spec;
  }

  /** Resolves when the book's run ends (for tests and the demo); undefined if not running here. */
  settled(bookId: string): Promise<PipelineResult> | undefined {
    return this.#running.get(bookId);
  }

  /** Stops every run where it is; their books keep their status and saved chapters. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#running.values());
  }
}
