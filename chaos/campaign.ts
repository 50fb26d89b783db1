import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { checkHistory } from './checker.js';
import type { CheckReport } from './checker.js';
import { HistoryWriter } from './history.js';
import { KNOWN_VIOLATIONS } from './known-violations.js';
import { Books, demoBooks, httpPublisher, OutsideWorker } from './load.js';
import type { LoadOptions } from './load.js';
import { planFaults, runNemesis } from './nemesis.js';
import { Prng } from './prng.js';
import { recordFinal, settle } from './settle.js';
import { Topology } from './topology.js';
import type { Mode } from './topology.js';
import { Poller, SseWatcher, WsWatcher } from './watchers.js';
import type { Watcher } from './watchers.js';

export interface CampaignOptions {
  mode: Mode;
  seed: number;
  durationMs: number;
  historyPath: string;
  /** Progress lines for people (the CLI prints them). */
  say?: (line: string) => void;
  /** Told the topology once it runs, so that a test can stop it however the test ends. */
  onTopology?: (topology: Topology) => void;
}

/** The servers' backend bound (their default), and the bound every answer is held to. */
export const BACKEND_TIMEOUT_MS = 2_000;
export const ANSWER_BOUND_MS = BACKEND_TIMEOUT_MS + 1_000;
/** A server process past this resident size is a leak, not load. */
export const RSS_LIMIT_MB = 600;
const SERVERS = 3;
/** The legacy UI polled every 3 s. */
const POLL_INTERVAL_MS = 3_000;
const SETTLE_MS = 45_000;
const LAG_TICK_MS = 50;
/** A multiplexed stream opens for every this many new books. */
const MULTIPLEX_BATCH = 4;

const SERVER_ENV: Record<string, string> = {
  BACKEND_TIMEOUT_MS: String(BACKEND_TIMEOUT_MS),
  SNAPSHOT_INTERVAL_MS: '1000',
  DEMO_STEP_MS: '50',
  // A frozen or killed runner's books move to another process within seconds.
  RUN_LEASE_MS: '2000',
  HEARTBEAT_MS: '2000',
  LOG_LEVEL: 'warn',
};

/**
 * One campaign: three servers on `mode`'s Redis and a Postgres behind fault proxies, the load of
 * every kind of publisher and watcher, the seeded faults for `durationMs`, then heal, settle,
 * record what everything ended on, and check the whole history.
 */
export async function runCampaign(options: CampaignOptions): Promise<CheckReport> {
  const say = options.say ?? (() => {});
  const history = new HistoryWriter(options.historyPath);
  const plan = planFaults(options.seed, options.mode, options.durationMs, SERVERS);
  say(`chaos ${options.mode}: CHAOS_SEED=${options.seed}, ${plan.length} faults planned over ${options.durationMs / 1000} s, history in ${options.historyPath}`);
  const topology = await Topology.start(options.mode, SERVERS, SERVER_ENV);
  options.onTopology?.(topology);
  const watchers: Watcher[] = [];
  const pollers: Poller[] = [];
  let worker: OutsideWorker | null = null;
  let rssTimer: NodeJS.Timeout | undefined;
  let lagTimer: NodeJS.Timeout | undefined;
  try {
    history.record({ type: 'start', seed: options.seed, mode: options.mode, durationMs: options.durationMs, boundMs: ANSWER_BOUND_MS, rssLimitMb: RSS_LIMIT_MB, servers: SERVERS });
    const prng = new Prng(options.seed).fork();
    const books = new Books(history);
    const clientMs = ANSWER_BOUND_MS + 7_000;
    const sockets = topology.instances.map((instance) => new WsWatcher(`ws-${instance.index}`, instance, history));
    watchers.push(...sockets);
    let batch: string[] = [];
    books.onBook((bookId) => {
      watchers.push(new SseWatcher(`sse-${bookId}`, prng.pick(topology.instances), history, [bookId]));
      const poller = new Poller(`poll-${bookId}`, prng.pick(topology.instances), history, bookId, POLL_INTERVAL_MS, clientMs);
      pollers.push(poller);
      watchers.push(poller);
      prng.pick(sockets).follow(bookId);
      batch.push(bookId);
      if (batch.length === MULTIPLEX_BATCH) {
        watchers.push(new SseWatcher(`multi-${watchers.length}`, prng.pick(topology.instances), history, batch));
        batch = [];
      }
    });
    // The machine is shared: when this process's own timers run late, so do its measurements.
    let tick = performance.now();
    lagTimer = setInterval(() => {
      const now = performance.now();
      const late = Math.round(now - tick - LAG_TICK_MS);
      tick = now;
      if (late >= 50) history.record({ type: 'lag', ms: late });
    }, LAG_TICK_MS);
    rssTimer = setInterval(() => {
      for (const instance of topology.instances) {
        if (instance.exitedByItself()) history.record({ type: 'log', server: instance.index, line: `the server exited by itself: ${instance.current!.output.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}` });
        const mb = instance.rssMb();
        if (mb !== null) history.record({ type: 'rss', server: instance.index, mb });
      }
    }, 2_000);

    const heal = new AbortController();
    const stop = new AbortController();
    const load: LoadOptions = { topology, history, books, prng, stop: stop.signal, clientMs };
    worker = new OutsideWorker(load);
    const w = worker;
    const publishers = [
      ...[0, 1, 2].map((lane) => httpPublisher(load, lane)),
      ...[0, 1].map((lane) => w.run(lane)),
      demoBooks(load),
    ];
    const nemesis = runNemesis(plan, topology, history, heal.signal);
    await delay(options.durationMs);
    say('healing every fault');
    heal.abort();
    await nemesis;
    say('finishing the books in progress');
    stop.abort();
    await Promise.all(publishers);
    say('settling');
    const settledMs = await settle(topology, books, watchers, SETTLE_MS);
    // Together: each ends once its poll in flight and its 3 s pause end.
    await Promise.all(pollers.map((poller) => poller.stop()));
    await Promise.all(pollers.map((poller) => poller.poll(clientMs)));
    await recordFinal(topology, books, watchers, history);
    for (const instance of topology.instances) {
      writeFileSync(`${options.historyPath}.server-${instance.index}.log`, instance.processes.map((p) => p.output).join('\n--- restarted ---\n'));
      for (const process of instance.processes) {
        for (const line of process.output.split('\n')) if (/unhandled (error|rejection)/.test(line)) history.record({ type: 'log', server: instance.index, line });
      }
    }
    history.record({ type: 'end', settledMs });
    return checkHistory(history.events, KNOWN_VIOLATIONS);
  } finally {
    clearInterval(rssTimer);
    clearInterval(lagTimer);
    for (const watcher of watchers) watcher.close();
    await worker?.close();
    await topology.stop();
    await history.close();
  }
}
