/** What the orchestrator and the swarm processes agree on (kept apart: swarm.ts runs on import). */
import type { BookRange } from '../support/fixtures.js';

/** A process may hold 20,000 open files here; a quarter of that leaves room for everything else. */
export const MAX_CLIENTS_PER_PROCESS = 5_000;

export type ClientKind = 'sse' | 'socketio';

export interface ConnectCommand {
  kind: ClientKind;
  host: string;
  port: number;
  /** Client i watches book `books.first + (i % books.count)`. */
  books: BookRange;
  clients: number;
  /** Clients connecting at once. */
  concurrency: number;
  timeoutMs: number;
}

export interface ChurnCommand extends Omit<ConnectCommand, 'clients' | 'timeoutMs'> {
  durationMs: number;
  maxConnects: number;
}
