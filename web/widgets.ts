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
  fill.style.width = `${progress.status === 'COMPLETE' ? 100 : progress.overallProgress}%`;
}

/** Status as words and a symbol, readable without colour. */
export function statusText(status: BookProgress['status']): string {
  return STATUS_TEXT[status];
}

/** Cancel and Retry for one book, with the outcome of the last click in words. */
export interface BookActions {
  readonly element: HTMLElement;
  /** Shows the buttons that apply: Cancel while it runs, Retry once it failed; none for a book no run of ours generates. */
  update(progress: BookProgress | null, managed: boolean): void;
}

type Action = 'cancel' | 'retry';
const ACTION_TEXT: Record<Action, { label: string; busy: string; done: (status: number) => string }> = {
  cancel: { label: 'Cancel', busy: 'Cancelling…', done: (status) => (status === 202 ? 'Cancel requested: stopping…' : 'Cancelled') },
  retry: { label: 'Retry', busy: 'Retrying…', done: () => 'Queued again' },
};

/**
 * The buttons POST /api/books/:id/cancel or /retry with `post`; `onDone` runs after a
 * success (the book page watches again after a retry). Shown only to a caller allowed to
 * (books:write): the caller decides before it builds them.
 */
export function bookActions(bookId: string, name: string, post: (path: string) => Promise<Response>, onDone: (action: Action) => void = () => {}): BookActions {
  const outcome = el('span', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  const buttons = (['cancel', 'retry'] as const).map((action) => {
    const button = el('button', { type: 'button', class: `action ${action}`, 'data-action': action, 'aria-label': `${ACTION_TEXT[action].label} ${name}`, hidden: '' }, ACTION_TEXT[action].label);
    button.addEventListener('click', async () => {
      button.disabled = true;
      outcome.dataset.state = 'busy';
      outcome.textContent = ACTION_TEXT[action].busy;
      try {
        const res = await post(`api/books/${encodeURIComponent(bookId)}/${action}`);
        const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
        outcome.dataset.state = res.ok ? 'ok' : 'failed';
        outcome.textContent = res.ok ? ACTION_TEXT[action].done(res.status) : `${ACTION_TEXT[action].label} refused: ${body.error?.message ?? `the server answered ${res.status}`}`;
        if (res.ok) onDone(action);
      } catch {
        outcome.dataset.state = 'failed';
        outcome.textContent = `${ACTION_TEXT[action].label} failed: the server did not answer`;
      } finally {
        button.disabled = false;
      }
    });
    return button;
  });
  const element = el('div', { class: 'actions' }, ...buttons, outcome);
  return {
    element,
    update(progress, managed) {
      const status = progress?.status ?? 'PLANNING';
      const [cancel, retry] = buttons as [HTMLButtonElement, HTMLButtonElement];
      cancel.hidden = !managed || status === 'COMPLETE' || status === 'ERROR';
      retry.hidden = !managed || status !== 'ERROR';
    },
  };
}
