/**
 * The operator view (/admin): what this server process holds and does, from
 * GET /api/admin/status every POLL_MS. Needs an `admin` token when authentication is on.
 * Every figure is set with textContent (the page's CSP allows no inline script or style).
 */
import { byId, el } from './dom.js';
import { apiFetch, loadSession, may } from './session.js';

/** How often the page asks for the status: live enough to watch a stream open, cheap for the server. */
const POLL_MS = 1_000;

type Transport = 'sse' | 'multiplexed' | 'every-book' | 'websocket';

interface Status {
  at: number;
  process: { owner: string; startedAt: number; pid: number };
  health: { ready: boolean; draining: boolean; broker: string; database: string };
  connections: {
    total: number;
    byTransport: Record<Transport, number>;
    byTenant: Array<{ tenant: string | null; total: number } & Partial<Record<Transport, number>>>;
    polls: { lastMinute: number; thisMinute: number; polledBooks: number };
  };
  books: { watched: number; watchers: number; everyBookWatchers: number; list: Array<{ bookId: string; watchers: number; tenant: string | null }> };
  snapshots: { intervalMs: number; lagMs: number | null; lastRound: { endedAt: number; durationMs: number; outcome: string; rows: number; error?: string } | null; taken: number; rowsWritten: number; failures: number; waitingForDatabase: number };
  generations: {
    runningHere: number; queued: number; running: number; stalled: number; retrying: number; generatorRetries: number; resumed: number;
    runs: Array<{ bookId: string; title: string; tenant: string | null; state: string; owner: string | null; leaseUntil: number | null; claims: number; retry: boolean; cancelRequested: boolean }> | null;
    error?: string;
  };
  faults: { totals: Record<string, number>; recent: Array<{ at: number; kind: string; message: string; count?: number }> };
}

const connection = byId('connection');
const state = byId('admin-state');
const panels = byId('panels');

/** A `<dl>` of figures: each item's `data-stat` names it for tests and styles. */
function stats(id: string, items: Array<[key: string, label: string, value: string, health?: string]>): void {
  byId(id).replaceChildren(
    ...items.map(([key, label, value, health]) => {
      const dd = el('dd', { 'data-stat': key }, value);
      if (health !== undefined) dd.dataset.health = health;
      return el('div', {}, el('dt', {}, label), dd);
    }),
  );
}

function rows(tableId: string, cells: string[][]): void {
  const body = byId(tableId).querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(...cells.map((row) => el('tr', {}, ...row.map((cell) => el('td', {}, cell)))));
}

const ms = (value: number | null): string => (value === null ? '–' : value < 1_000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`);
const time = (at: number): string => new Date(at).toLocaleTimeString();
const tenantName = (tenant: string | null): string => tenant ?? '(none)';

function render(status: Status): void {
  const { health, connections, books, snapshots, generations, faults } = status;
  stats('health', [
    ['ready', 'Ready', health.ready ? 'yes' : health.draining ? 'draining' : 'no', health.ready ? 'ok' : 'down'],
    ['broker', 'Redis / broker', health.broker, health.broker],
    ['database', 'Database', health.database, health.database],
    ['uptime', 'Up for', ms(status.at - status.process.startedAt)],
  ]);
  stats('transports', [
    ['connections', 'Open', String(connections.total)],
    ['sse', 'SSE per book', String(connections.byTransport.sse)],
    ['multiplexed', 'Multiplexed', String(connections.byTransport.multiplexed)],
    ['every-book', 'Every book', String(connections.byTransport['every-book'])],
    ['websocket', 'WebSocket', String(connections.byTransport.websocket)],
    ['polls-last-minute', 'Polls last minute', String(connections.polls.lastMinute)],
    ['polls-this-minute', 'Polls this minute', String(connections.polls.thisMinute)],
    ['polled-books', 'Books polled', String(connections.polls.polledBooks)],
  ]);
  rows('tenants', connections.byTenant.map((t) => [tenantName(t.tenant), String(t.total), String(t.sse ?? 0), String(t.multiplexed ?? 0), String(t['every-book'] ?? 0), String(t.websocket ?? 0)]));
  stats('watched', [
    ['books-watched', 'Books', String(books.watched)],
    ['watchers', 'Watchers', String(books.watchers)],
    ['every-book-watchers', 'Every-book', String(books.everyBookWatchers)],
  ]);
  rows('books-watched', books.list.map((b) => [b.bookId, tenantName(b.tenant), String(b.watchers)]));
  const last = snapshots.lastRound;
  stats('snapshots', [
    ['lag', 'Since last write', ms(snapshots.lagMs)],
    ['interval', 'Interval', ms(snapshots.intervalMs)],
    ['last-round', 'Last round', last === null ? '–' : `${last.outcome}${last.outcome === 'written' ? ` ${last.rows} rows` : ''}`, last === null ? undefined : last.outcome === 'failed' ? 'down' : 'ok'],
    ['last-round-at', 'Ended at', last === null ? '–' : `${time(last.endedAt)} (${ms(last.durationMs)})`],
    ['snapshots', 'Rounds written', String(snapshots.taken)],
    ['rows', 'Rows written', String(snapshots.rowsWritten)],
    ['failures', 'Failures', String(snapshots.failures)],
    ['waiting', 'Waiting for DB', String(snapshots.waitingForDatabase)],
  ]);
  stats('generations', [
    ['queued', 'Queued', String(generations.queued)],
    ['running', 'Running', String(generations.running)],
    ['running-here', 'Running here', String(generations.runningHere)],
    ['stalled', 'Stalled', String(generations.stalled)],
    ['retrying', 'Retrying', String(generations.retrying)],
    ['generator-retries', 'Call retries', String(generations.generatorRetries)],
    ['resumed', 'Resumed here', String(generations.resumed)],
  ]);
  rows(
    'runs',
    (generations.runs ?? []).map((r) => [
      r.title ? `${r.title} (${r.bookId})` : r.bookId,
      tenantName(r.tenant),
      `${r.state}${r.retry ? ', retry' : ''}${r.cancelRequested ? ', cancelling' : ''}`,
      r.owner ?? '–',
      r.leaseUntil === null ? '–' : r.leaseUntil >= status.at ? `${ms(r.leaseUntil - status.at)} left` : `ran out ${ms(status.at - r.leaseUntil)} ago`,
      String(r.claims),
    ]),
  );
  if (generations.runs === null) rows('runs', [[`The queue could not be read: ${generations.error ?? 'no answer'}`, '', '', '', '', '']]);
  stats('fault-totals', Object.entries(faults.totals).map(([kind, n]) => [kind, kind, String(n)]));
  byId('faults').replaceChildren(
    ...[...faults.recent].reverse().map((line) => el('li', {}, el('time', {}, time(line.at)), ` ${line.kind}: ${line.message}${line.count ? ` (${line.count} more)` : ''}`)),
  );
}

function showState(kind: string, text: string): void {
  state.dataset.state = kind;
  state.replaceChildren(el('p', {}, text));
  state.hidden = false;
}

async function refresh(): Promise<boolean> {
  try {
    const res = await apiFetch('api/admin/status');
    if (res.status === 401) return false;
    if (res.status === 403) {
      showState('forbidden', 'This view needs a token with the admin scope.');
      panels.hidden = true;
      connection.dataset.state = 'offline';
      connection.textContent = 'Not an admin';
      return false;
    }
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    const body = (await res.json()) as { data: Status };
    render(body.data);
    state.hidden = true;
    panels.hidden = false;
    connection.dataset.state = 'live';
    connection.textContent = `Live · updated ${time(body.data.at)}`;
  } catch (error) {
    connection.dataset.state = 'offline';
    connection.textContent = `Offline: ${(error as Error).message}`;
  }
  return true;
}

async function start(): Promise<void> {
  const session = await loadSession();
  if (session.state === 'signed-out' || session.state === 'refused') {
    state.hidden = true;
    return;
  }
  if (session.state === 'signed-in' && session.info.auth && !may('admin')) {
    showState('forbidden', 'This view needs a token with the admin scope.');
    connection.dataset.state = 'offline';
    connection.textContent = 'Not an admin';
    return;
  }
  const loop = async () => {
    if (await refresh()) setTimeout(() => void loop(), POLL_MS);
  };
  await loop();
}

void start();
