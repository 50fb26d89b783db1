import type { ConnectionState } from './client.js';
import { CONNECTION_LABELS } from './format.js';

/** Shows the connection state in words (and a symbol), for the live / polling / offline indicator. */
export function showConnection(element: HTMLElement, state: ConnectionState): void {
  element.dataset.state = state;
  element.textContent = CONNECTION_LABELS[state];
}
