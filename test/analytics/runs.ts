import { nextState } from '../../src/progress/derive.js';
import type { BookProgress, ProgressUpdate } from '../../src/progress/schema.js';

export interface RunShape {
  chapters: number;
  sections: number;
  /** ms per step other than CHAPTERS */
  stepMs: number;
  sectionMs: number;
  start: number;
  tenant?: string;
  /** Ends with ERROR during this chapter instead of COMPLETE. */
  failAtChapter?: number;
}

/**
 * The states the demo pipeline commits for one run, with known times: PLANNING, RESEARCH,
 * OUTLINE, STRUCTURE each `stepMs`, every section `sectionMs`, PROOFREADING `stepMs`.
 */
export function simulateRun(bookId: string, shape: RunShape, previous: BookProgress | null = null): BookProgress[] {
  const states: BookProgress[] = [];
  let state = previous;
  let now = shape.start;
  const commit = (update: ProgressUpdate) => {
    state = nextState(bookId, state, update, now, 0, shape.tenant);
    states.push(state);
  };
  commit({ status: 'PLANNING', generationStep: 'PLANNING', totalChapters: shape.chapters, totalSections: shape.sections, currentChapter: 0, currentSection: 0 });
  for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE'] as const) {
    now += shape.stepMs;
    commit({ status: 'GENERATING', generationStep: step });
  }
  for (let c = 1; c <= shape.chapters; c++) {
    for (let s = 1; s <= shape.sections; s++) {
      now += s === 1 && c === 1 ? shape.stepMs : 0;
      commit({ generationStep: 'CHAPTERS', currentChapter: c, currentSection: s - 1 });
      now += shape.sectionMs;
      if (shape.failAtChapter === c) {
        commit({ status: 'ERROR', error: `chapter ${c} failed` });
        return states;
      }
    }
    commit({ currentChapter: c, currentSection: shape.sections });
  }
  commit({ generationStep: 'PROOFREADING' });
  now += shape.stepMs;
  commit({ status: 'COMPLETE' });
  return states;
}
