/** One run's figures as JSON and as the markdown tables of docs/performance.md. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Figures, Floor } from './floors.js';
import type { EmbeddedResult } from '../scenarios/embedded.js';
import type { FanoutResult, FanoutRun } from '../scenarios/fanout.js';
import type { PollResult } from '../scenarios/poll.js';

export interface Machine {
  node: string;
  cores: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
}

export interface RunReport extends Figures {
  date: string;
  mode: 'quick' | 'full';
  machine: Machine;
  durationSec: number;
  floors: Floor[];
}

const KIB = 1024;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits = 2) => n.toFixed(digits);
const TARGET_NAMES: Record<string, string> = { server: 'server (poll without token)', 'server-token': 'server, poll with token (auth on)', b0: 'B0 node:http', 'b0-token': 'B0 node:http, sent the token too', b1: 'B1 node:http + GET', b3: 'B3 node:http SSE', socketio: 'Socket.IO + redis-adapter' };

export function toMarkdown(report: RunReport): string {
  const { poll, fanout, database, machine } = report;
  const out: string[] = [];
  out.push(`Run ${report.date}, ${report.mode} mode, ${report.durationSec} s. Node ${machine.node}, ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}.`, '');

  out.push('### Floors', '', '| floor | measured | limit | result |', '| --- | --- | --- | --- |');
  for (const f of report.floors) out.push(`| ${f.name} | ${f.measured}${f.note ? ` (${f.note})` : ''} | ${f.limit} | ${f.pass ? 'PASS' : '**FAIL**'} |`);

  out.push('', ...pollTable(poll));

  out.push('', ...fanoutTable(fanout.runs));

  out.push('', ...memoryTable(fanout));

  out.push('', ...connectionTable(fanout));

  out.push('', '### Database (Postgres proxy counts)', '');
  out.push('| books | updates/s each | duration s | snapshot interval s | rounds | upserts/round | rows written/round | statements/round | Postgres n_tup_ins + n_tup_upd |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  out.push(`| ${int(database.books)} | 1 | ${database.durationMs / 1000} | ${database.snapshotIntervalMs / 1000} | ${database.rounds} | ${fixed(database.upsertsPerRound)} | ${int(database.rowsPerRound)} | ${fixed(database.statementsPerRound)} | ${int(database.table.inserted + database.table.updated)} |`);

  out.push('', ...embeddedTable(report.embedded));

  return `${out.join('\n')}\n`;
}

/** The poll tables (medians, then every run in order), shared by the full report and `--only poll`. */
export function pollTable(poll: PollResult): string[] {
  const out: string[] = [];
  const rps = (target: string, notModified: boolean) => poll.runs.find((r) => r.target === target && r.notModified === notModified)?.requestsPerSecond ?? 0;
  const rounds = poll.samples.filter((r) => r.target === 'server' && !r.notModified).length;
  out.push(`### Poll (wrk, 1 thread, 50 connections, no pipelining; median of ${rounds} alternating rounds)`, '', '| target | path | req/s | p50 ms | p99 ms | target CPU % | load avg | × B0 | × B1 | × poll without token |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of poll.runs) {
    const b0 = rps('b0', r.notModified) || rps('b0', false);
    const b1 = rps('b1', r.notModified) || rps('b1', false);
    const plain = rps('server', r.notModified);
    const codes = Object.entries(r.statusCodes).map(([s, n]) => `${s}×${int(n)}`).join(' ');
    out.push(`| ${TARGET_NAMES[r.target]} | ${r.notModified ? `If-None-Match (${codes})` : `200 (${codes})`} | ${int(r.requestsPerSecond)} | ${r.p50} | ${r.p99} | ${int(r.cpuPercent)} | ${fixed(r.loadAverage, 1)} | ${fixed(r.requestsPerSecond / b0)} | ${fixed(r.requestsPerSecond / b1)} | ${fixed(r.requestsPerSecond / plain)} |`);
  }
  out.push('', 'Every run, in order (req/s, load average):', '');
  out.push(poll.samples.map((r) => `${r.target}${r.notModified ? ' 304' : ''} ${int(r.requestsPerSecond)} (${fixed(r.loadAverage, 1)})`).join(' · '));
  out.push('', `Statements the server sent to Postgres during its poll runs: ${poll.database.statements}, of which reads of books (the poll path's fallback): ${poll.database.bookReads}; the rest are the generation queue's.`);
  if (poll.profile) {
    out.push('', `### CPU profile of the server under poll load with a token (${Math.round(poll.profile.durationMs / 1000)} s of load, start-up left out; \`${poll.profile.file}\`)`, '', '| function (self time) | self % | total % |', '| --- | ---: | ---: |');
    for (const f of poll.profile.bySelf) out.push(`| \`${f.name}\` | ${f.selfPercent} | ${f.totalPercent} |`);
    out.push('', '| project function (inclusive time) | self % | total % |', '| --- | ---: | ---: |');
    for (const f of poll.profile.projectByTotal) out.push(`| \`${f.name}\` | ${f.selfPercent} | ${f.totalPercent} |`);
  }
  return out;
}

/** The fan-out table, shared by the full report and `--only fanout`. */
function fanoutTable(runs: FanoutRun[]): string[] {
  const out: string[] = ['### Fan-out (raw HTTP SSE swarm; Socket.IO clients for Socket.IO)', ''];
  const window = (shape: 'a' | 'b' | 'c') => {
    const run = runs.find((r) => r.shape === shape);
    return run ? ` (publishing for ${run.windowMs / 1000} s)` : '';
  };
  out.push(`(a) every client on its own book, each updated once a second${window('a')}; (b) every client on one book updated 10 times a second${window('b')}; (c) 100 clients on each book, HTTP publishes at 200/s over all books${window('c')}.`, '');
  out.push('| clients | shape | target | published/s | delivered/s | expected | received | p50 ms | p99 ms | max ms | lost latest | target CPU % | swarm CPU % | Redis CPU % | Redis reply p99 ms |');
  out.push('| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of runs) {
    out.push(
      `| ${int(r.clients)} | ${r.shape} | ${TARGET_NAMES[r.target]} | ${int(r.publishRate)} | ${int(r.deliveredPerSecond)} | ${int(r.expected)} | ${int(r.received)} | ${r.latency.p50} | ${r.latency.p99} | ${r.latency.max} | ${r.lost} | ${int(r.cpuPercent)} | ${int(r.swarmCpuPercent)} | ${int(r.redisCpuPercent)} | ${r.redisAckMs ? r.redisAckMs.p99 : '-'} |`,
    );
  }
  return out;
}

/** `--only fanout`: the fan-out table, and the targets' event-loop delay and GC pauses when measured. */
/** RSS and heap per idle connection of each target, and their ratio to B3's. */
function memoryTable(fanout: FanoutResult): string[] {
  const out = ['### Memory per idle connection (clients of (a), connected, nothing published; heap after a forced GC)', ''];
  out.push('| clients | target | RSS KiB/conn | heap KiB/conn | RSS × B3 | heap × B3 | RSS before → after MiB |', '| ---: | --- | ---: | ---: | ---: | ---: | --- |');
  for (const m of fanout.memory) {
    const b3 = fanout.memory.find((x) => x.target === 'b3' && x.clients === m.clients);
    out.push(
      `| ${int(m.clients)} | ${TARGET_NAMES[m.target]} | ${fixed(m.rssPerConnection / KIB, 1)} | ${fixed(m.heapPerConnection / KIB, 1)} | ${b3 ? fixed(m.rssPerConnection / b3.rssPerConnection) : '-'} | ${b3 ? fixed(m.heapPerConnection / b3.heapPerConnection) : '-'} | ${fixed(m.before.rss / KIB / KIB, 0)} → ${fixed(m.after.rss / KIB / KIB, 0)} |`,
    );
  }
  return out;
}

export function fanoutOnlyMarkdown(fanout: FanoutResult): string {
  const out = [...fanoutTable(fanout.runs), '', ...memoryTable(fanout), '', ...connectionTable(fanout)];
  const troubled = fanout.runs.filter((r) => r.dropped > 0 || Object.keys(r.errors).length > 0 || r.publishFailures.count > 0);
  if (troubled.length > 0) {
    out.push('', 'Closed streams and client errors:', '');
    for (const r of troubled) out.push(`- ${int(r.clients)} ${r.shape} ${TARGET_NAMES[r.target]}: ${r.dropped} dropped; ${Object.entries(r.errors).map(([m, n]) => `${m} ×${n}`).join(', ') || 'no client errors'}; ${r.publishFailures.count} publishes failed${r.publishFailures.first ? ` (first: ${r.publishFailures.first})` : ''}`);
  }
  const measured = fanout.runs.filter((r) => r.loop);
  if (measured.length > 0) {
    out.push('', '### Event loop and GC of the target while publishing (bench/support/probe.ts)', '');
    out.push('| clients | shape | target | loop delay p50 ms | p99 ms | max ms | GC pauses: kind count/total ms/max ms | GC pauses > 20 ms (kind ms @ ms into the window) | loop blocks > 40 ms (ms @ ms into the window, wall-clock s mod 30) |');
    out.push('| ---: | --- | --- | ---: | ---: | ---: | --- | --- | --- |');
    for (const r of measured) {
      const l = r.loop!;
      const gc = Object.entries(l.gc).map(([kind, t]) => `${kind} ${t.count}/${t.totalMs}/${t.maxMs}`).join(', ');
      const long = l.longGc.map((g) => `${g.kind} ${g.ms}@${g.at}`).join(', ') || '-';
      const blocks = l.blocks.map((b) => `${b.ms}@${b.at} (${((b.wallMs % 30_000) / 1000).toFixed(1)})`).join(', ') || '-';
      out.push(`| ${int(r.clients)} | ${r.shape} | ${TARGET_NAMES[r.target]} | ${l.loopDelayMs.p50} | ${l.loopDelayMs.p99} | ${l.loopDelayMs.max} | ${gc} | ${long} | ${blocks} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Connects of every (a) run, and the churn of the server; shared by the full report and `--only fanout`. */
function connectionTable(fanout: FanoutResult): string[] {
  const out = ['### Connection setup', '', '| target | clients | phase | connects/s | connect-to-first-event p50 ms | p99 ms | max ms | failed |', '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of fanout.runs.filter((x) => x.shape === 'a')) {
    const c = r.connect;
    const first = r.target === 'server' ? c.firstEventMs : c.openMs;
    out.push(`| ${TARGET_NAMES[r.target]} | ${int(r.clients)} | connect all${r.target === 'server' ? '' : ' (to open: no event on connect)'} | ${int(c.connectsPerSecond)} | ${first.p50} | ${first.p99} | ${first.max} | ${c.failed} |`);
  }
  const churn = fanout.churn;
  if (churn) {
    const f = churn.firstEventMs;
    out.push(`| server | ${int(churn.clients)} books | churn (connect, first event, close) | ${int(churn.connectsPerSecond)} | ${f.p50} | ${f.p99} | ${f.max} | ${churn.failed} |`);
  }
  return out;
}

/** The embedded default's start-up time and idle memory: the "embedded idle RSS and start-up time" rows. */
export function embeddedTable(embedded: EmbeddedResult): string[] {
  const out = [`### Embedded idle RSS and start-up time (\`node dist/main.js\` after \`npm run build\`, no Redis, no Postgres; RSS after ${embedded.idleMs / 1000} s idle)`, ''];
  out.push('| start | spawn to /healthz s | idle RSS MiB | peak RSS MiB |', '| --- | ---: | ---: | ---: |');
  for (const s of embedded.starts) out.push(`| ${s.phase} | ${fixed(s.readyMs / 1000)} | ${fixed(s.idleRss / KIB / KIB, 0)} | ${fixed(s.peakRss / KIB / KIB, 0)} |`);
  return out;
}

/** The file name stem of a run's results: its date, safe in file names. */
export function resultStem(date: string): string {
  return date.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
}

/** Writes `<dir>/<stem>.json` and `<stem>.md`; returns their paths. */
export function writeReport(dir: string, report: RunReport): { json: string; markdown: string } {
  const stamp = resultStem(report.date);
  const json = join(dir, `${stamp}.json`);
  const markdown = join(dir, `${stamp}.md`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(markdown, toMarkdown(report));
  return { json, markdown };
}
