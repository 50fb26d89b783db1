import type { BookProgress } from './client.js';
import { el } from './dom.js';
import { STEP_LABELS, duration } from './format.js';

type Step = BookProgress['generationStep'];
const STEPS = Object.keys(STEP_LABELS) as Step[];

/** A step of the analytics timeline (GET /api/books/:id/timeline). */
export interface TimelineStep {
  step: Step;
  startedAt: number;
  durationMs: number | null;
}

/**
 * How long each step took: from the book's recorded timeline (steps that ended before the page
 * opened too), and from the states this page saw change step.
 */
export class StepTimes {
  /** When a step started: recorded, or seen (a state of a new step right after one of an earlier step). */
  readonly #started = new Map<Step, number>();
  readonly #recorded = new Map<Step, number>();
  #last: Step | null = null;

  /** Takes the recorded timeline's steps; their times win over what the page saw. */
  record(steps: readonly TimelineStep[]): void {
    for (const s of steps) {
      this.#started.set(s.step, s.startedAt);
      if (s.durationMs !== null) this.#recorded.set(s.step, s.durationMs);
    }
  }

  observe(progress: BookProgress): void {
    const step = progress.generationStep;
    // The first state seen may be well into its step: its start is not known from it.
    if (this.#last !== null && this.#last !== step && !this.#started.has(step)) this.#started.set(step, progress.timestamp);
    this.#last = step;
  }

  /** The step's duration in ms, when known. */
  took(step: Step): number | undefined {
    const recorded = this.#recorded.get(step);
    if (recorded !== undefined) return recorded;
    const started = this.#started.get(step);
    const next = STEPS.slice(STEPS.indexOf(step) + 1).map((s) => this.#started.get(s)).find((t) => t !== undefined);
    return started !== undefined && next !== undefined ? next - started : undefined;
  }
}

/** The steps as a list: done, current or to do, with the time each finished one took. */
export function renderSteps(list: HTMLElement, progress: BookProgress, times: StepTimes): void {
  const current = STEPS.indexOf(progress.generationStep);
  list.replaceChildren(
    ...STEPS.map((step, i) => {
      const state = progress.status === 'COMPLETE' || i < current ? 'done' : i === current ? (progress.status === 'ERROR' ? 'failed' : 'current') : 'todo';
      const item = el('li', { 'data-step': step, 'data-state': state }, STEP_LABELS[step]);
      if (state === 'current' || state === 'failed') item.setAttribute('aria-current', 'step');
      const took = state === 'done' && step !== 'COMPLETE' ? times.took(step) : undefined;
      if (took !== undefined) item.append(el('span', { class: 'took' }, `took ${duration(took)}`));
      return item;
    }),
  );
}
