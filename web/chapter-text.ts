import type { BookProgress, SectionTextUpdate } from './client.js';
import { el } from './dom.js';

export interface ChapterTextView {
  /** The card to place on the page. */
  readonly element: HTMLElement;
  onText(update: SectionTextUpdate): void;
  onProgress(progress: BookProgress): void;
}

/**
 * The chapter being written, live: one paragraph per section, its text set as text (never
 * parsed as HTML: it is unsupervised model output). Text is shown as it comes, without a typing
 * animation, so after a reload the merged frame shows at once where the reader was.
 */
export function chapterTextView(): ChapterTextView {
  const heading = el('h2', { id: 'live-heading' }, 'Being written');
  const title = el('h3', { id: 'live-chapter' });
  const body = el('div', { id: 'live-text', class: 'live-text', 'aria-live': 'off' });
  const element = el('section', { class: 'card needs-book', id: 'live', 'aria-labelledby': 'live-heading' }, heading, title, body);
  element.hidden = true;
  let chapter = 0;
  const sections = new Map<number, HTMLParagraphElement>();

  const show = (n: number) => {
    chapter = n;
    sections.clear();
    body.replaceChildren();
    title.textContent = `Chapter ${n}`;
    element.hidden = false;
  };

  return {
    element,
    onText(update) {
      if (update.chapter < chapter) return;
      if (update.chapter > chapter) show(update.chapter);
      let paragraph = sections.get(update.section);
      if (!paragraph) {
        paragraph = el('p', { 'data-section': String(update.section) });
        sections.set(update.section, paragraph);
        // Sections in order, whichever arrives first.
        const after = [...sections.keys()].filter((s) => s > update.section).sort((a, b) => a - b)[0];
        const next = after === undefined ? null : (sections.get(after) ?? null);
        body.insertBefore(paragraph, next);
      }
      paragraph.textContent = update.text;
    },
    onProgress(progress) {
      // Done, or past the chapter shown: the saved chapters below have it.
      if (progress.status === 'COMPLETE' || (chapter > 0 && progress.currentChapter > chapter)) element.hidden = true;
    },
  };
}

/** A saved chapter, collapsed under its title: the list below the chapter being written. */
export function savedChapter(chapter: { number: number; title: string; content: string }): HTMLElement {
  const details = el('details', {}, el('summary', {}, `Chapter ${chapter.number}: ${chapter.title}`), el('p', {}, chapter.content));
  return el('article', { class: 'chapter', 'data-chapter': String(chapter.number) }, details);
}
