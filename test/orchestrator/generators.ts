import { DemoGenerator, sectionText } from '../../src/orchestrator/demo-generator.js';
import type { BookSpec, ChapterPlan, PreparationStep } from '../../src/orchestrator/generator.js';
import { withTimeout } from '../support/wait.js';

/** A point the generation stops at until the test lets it go on: `reached` resolves when it gets there. */
export class Gate {
  readonly reached: Promise<void>;
  readonly #opened: Promise<void>;
  #arrive: () => void = () => {};
  #open: () => void = () => {};

  constructor(readonly what: string) {
    this.reached = new Promise((resolve) => (this.#arrive = resolve));
    this.#opened = new Promise((resolve) => (this.#open = resolve));
  }

  /** Called by the generator: marks the gate reached and waits until it is opened. */
  async pass(): Promise<void> {
    this.#arrive();
    await this.#opened;
  }

  /** Resolves once the generation is waiting here. */
  arrival(ms = 10_000): Promise<void> {
    return withTimeout(this.reached, ms, `the generation to reach ${this.what}`);
  }

  open(): void {
    this.#open();
  }
}

export interface Scripted {
  /** Gates keyed by where they stop: 'PLANNING' (a preparation step) or 'chapter 2' (its first section). */
  gates?: Record<string, Gate>;
  /** Chapters whose first section throws this message: a generation failure. */
  failIn?: { chapter: number; message: string };
}

/**
 * The demo generator with gates and failures the test places: the real pipeline and content,
 * stopped at the moments a test needs to change the world (cut a backend, release it).
 */
export class ScriptedGenerator extends DemoGenerator {
  sectionsWritten = 0;
  readonly #script: Scripted;

  constructor(stepMs: number, script: Scripted = {}) {
    super(stepMs);
    this.#script = script;
  }

  override async prepare(step: PreparationStep, book: BookSpec): Promise<void> {
    await this.#script.gates?.[step]?.pass();
    await super.prepare(step, book);
  }

  override async *writeSection(book: BookSpec, chapter: ChapterPlan, section: number, signal: AbortSignal): AsyncIterable<string> {
    if (section === 1) await this.#script.gates?.[`chapter ${chapter.number}`]?.pass();
    const failure = this.#script.failIn;
    if (failure && failure.chapter === chapter.number) throw new Error(failure.message);
    yield* super.writeSection(book, chapter, section, signal);
    this.sectionsWritten++;
  }
}

/** The chapters the demo generator writes for `spec`, as the pipeline saves them: what Postgres must hold. */
export async function expectedChapters(spec: BookSpec): Promise<Array<{ number: number; title: string; content: string }>> {
  const demo = new DemoGenerator(0);
  const outline = await demo.outline(spec);
  const sections = Array.from({ length: spec.sectionsPerChapter }, (_, i) => i + 1);
  return Promise.all(
    outline.map(async (plan) => ({
      number: plan.number,
      title: plan.title,
      content: sections.map((section) => sectionText(spec, plan, section)).join('\n\n'),
    })),
  );
}
