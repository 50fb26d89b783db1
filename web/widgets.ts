import type { BookProgress } from './client.js';
import { el } from './dom.js';
import { percent } from './format.js';

const STATUS_TEXT: Record<BookProgress['status'], string> = {
  PLANNING: '◔ Planning',
  GENERATING: '◑ Generating',
  COMPLETE: '✓ Complete',
  ERROR: '✕ Failed',
};

/** A progress bar screen readers announce: role progressbar with aria-valuenow. */
export function progressBar(label: string): HTMLDivElement {
  const fill = el('div', { class: 'bar-fill' });
  const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill);
  return bar;
}

export function setProgress(bar: HTMLElement, progress: BookProgress): void {
  const value = Math.round(progress.overallProgress);
  bar.setAttribute('aria-valuenow', String(value));
  bar.setAttribute('aria-valuetext', `${percent(progress)}, ${STATUS_TEXT[progress.status]}`);
  bar.dataset.status = progress.status;
  const fill = bar.firstElementChild as HTMLElement;
  fill.style.width = `${progress.overallProgress}%`;
}

/** Status as words and a symbol, readable without colour. */
export function statusText(status: BookProgress['status']): string {
  return STATUS_TEXT[status];
}
