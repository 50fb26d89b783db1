import uPlot from 'uplot';
import type { AlignedData, Options } from 'uplot';
import { byId, el } from './dom.js';
import { duration } from './format.js';
import { apiFetch, loadSession } from './session.js';

interface Percentiles {
  count: number;
  p50: number | null;
  p90: number | null;
}

/** What GET /api/analytics answers (src/analytics/queries.ts and eta-accuracy.ts). */
interface AnalyticsAnswer {
  since: number;
  until: number;
  runs: { started: number; completed: number; failed: number; running: number; completionRate: number | null; failureRate: number | null };
  runDuration: Percentiles;
  steps: Array<Percentiles & { step: string }>;
  chapter: Percentiles;
  section: Percentiles;
  throughput: { bucketMs: number; buckets: Array<{ start: number; completed: number; failed: number }> };
  eta: { runs: number; checkpoints: Array<{ at: number; learned: number | null; linear: number | null; lateCoverage: number | null }> };
}

const DAY_MS = 86_400_000;
const STEP_ORDER = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING'];
const COLORS = { p50: '#2563eb', p90: '#93c5fd', completed: '#16a34a', failed: '#dc2626', learned: '#2563eb', linear: '#9ca3af', late: '#f59e0b' };
const charts: uPlot[] = [];

function chartWidth(id: string): number {
  return Math.max(240, byId(id).clientWidth);
}

/** Two bar series side by side: the first left of its tick, the second right. */
function bars(index: 0 | 1): Options['series'][number]['paths'] {
  return uPlot.paths.bars!({ size: [0.38, 80], align: index === 0 ? -1 : 1 });
}

function draw(id: string, options: Omit<Options, 'width' | 'height'>, data: AlignedData): void {
  const slot = byId(id);
  slot.replaceChildren();
  charts.push(new uPlot({ ...options, width: chartWidth(id), height: 260 }, data, slot));
}

function renderFigures(a: AnalyticsAnswer): void {
  const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)} %`);
  const ms = (x: number | null) => (x === null ? '—' : duration(x));
  const figures: Array<[string, string]> = [
    ['Started', String(a.runs.started)],
    ['Completed', `${a.runs.completed} (${pct(a.runs.completionRate)})`],
    ['Failed', `${a.runs.failed} (${pct(a.runs.failureRate)})`],
    ['Running', String(a.runs.running)],
    ['Run duration p50', ms(a.runDuration.p50)],
    ['Run duration p90', ms(a.runDuration.p90)],
  ];
  byId('figures').replaceChildren(...figures.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function renderSteps(a: AnalyticsAnswer): void {
  const rows = [
    ...STEP_ORDER.map((step) => ({ label: step.charAt(0) + step.slice(1).toLowerCase(), p: a.steps.find((s) => s.step === step) })),
    { label: 'Chapter', p: a.chapter },
    { label: 'Section', p: a.section },
  ];
  // On a phone's width the eight names would overlap: short ones.
  const short = ['Plan', 'Res', 'Outl', 'Str', 'Chaps', 'Proof', 'Ch.', 'Sec.'];
  const narrow = chartWidth('steps-chart') < 560;
  const labels = rows.map((r, i) => (narrow ? short[i]! : r.label));
  const sec = (x: number | null | undefined) => (x === null || x === undefined ? null : x / 1000);
  draw(
    'steps-chart',
    {
      scales: { x: { time: false, range: [-0.6, labels.length - 0.4] } },
      axes: [{ values: (_u, ticks) => ticks.map((t) => labels[t] ?? ''), splits: () => labels.map((_, i) => i), gap: 4 }, { label: 'seconds' }],
      series: [{}, { label: 'p50', fill: COLORS.p50, stroke: COLORS.p50, paths: bars(0), points: { show: false } }, { label: 'p90', fill: COLORS.p90, stroke: COLORS.p90, paths: bars(1), points: { show: false } }],
    },
    [labels.map((_, i) => i), rows.map((r) => sec(r.p?.p50)), rows.map((r) => sec(r.p?.p90))],
  );
}

function renderRuns(a: AnalyticsAnswer): void {
  const step = a.throughput.bucketMs;
  const byStart = new Map(a.throughput.buckets.map((b) => [b.start, b]));
  const xs: number[] = [];
  for (let t = a.since; t < a.until; t += step) xs.push(t);
  const per = step % 86_400_000 === 0 ? `${step / 86_400_000} day${step === 86_400_000 ? '' : 's'}` : step % 3_600_000 === 0 ? `${step / 3_600_000} h` : duration(step);
  byId('runs-chart-note').textContent = `Runs that ended, per ${per}.`;
  draw(
    'runs-chart',
    {
      scales: { x: { time: true } },
      axes: [{}, { label: 'runs' }],
      series: [
        {},
        { label: 'completed', stroke: COLORS.completed, fill: 'rgba(22,163,74,0.15)', width: 2 },
        { label: 'failed', stroke: COLORS.failed, fill: 'rgba(220,38,38,0.15)', width: 2 },
      ],
    },
    [xs.map((t) => t / 1000), xs.map((t) => byStart.get(t)?.completed ?? 0), xs.map((t) => byStart.get(t)?.failed ?? 0)],
  );
}

function renderEta(a: AnalyticsAnswer): void {
  const points = a.eta.checkpoints;
  const labels = points.map((p) => `${p.at * 100} %`);
  byId('eta-chart-note').textContent =
    a.eta.runs === 0
      ? 'No completed run with every step recorded in this window yet.'
      : `Error of the predicted remaining time (mean absolute %) at 10–75 % of each run, over ${a.eta.runs} completed runs replayed from their recorded steps; the late bound's coverage: share of runs ending before it.`;
  const pct = (x: number | null) => (x === null ? null : 100 * x);
  draw(
    'eta-chart',
    {
      scales: { x: { time: false, range: [-0.6, labels.length - 0.4] }, y: { range: (_u, _min, max) => [0, Math.max(100, max)] } },
      axes: [{ values: (_u, ticks) => ticks.map((t) => labels[t] ?? ''), splits: () => labels.map((_, i) => i), label: 'point of the run' }, { label: '%' }],
      series: [
        {},
        { label: 'learned error', fill: COLORS.learned, stroke: COLORS.learned, paths: bars(0), points: { show: false } },
        { label: 'linear error', fill: COLORS.linear, stroke: COLORS.linear, paths: bars(1), points: { show: false } },
        { label: 'late bound covers', stroke: COLORS.late, width: 2, points: { show: true, size: 8, fill: COLORS.late } },
      ],
    },
    [labels.map((_, i) => i), points.map((p) => pct(p.learned)), points.map((p) => pct(p.linear)), points.map((p) => pct(p.lateCoverage))],
  );
}

async function show(days: number): Promise<void> {
  for (const chart of charts.splice(0)) chart.destroy();
  document.body.dataset.analytics = 'loading';
  for (const button of document.querySelectorAll<HTMLButtonElement>('#window button')) button.setAttribute('aria-pressed', String(Number(button.dataset.days) === days));
  const until = Date.now();
  const res = await apiFetch(`api/analytics?since=${until - days * DAY_MS}&until=${until}`).catch(() => null);
  const error = byId('analytics-error');
  if (res === null || !res.ok) {
    error.hidden = false;
    error.textContent = res === null ? 'The server did not answer.' : `The analytics could not be loaded (${res.status}).`;
    document.body.dataset.analytics = 'error';
    return;
  }
  error.hidden = true;
  const answer = ((await res.json()) as { data: AnalyticsAnswer }).data;
  renderFigures(answer);
  renderSteps(answer);
  renderRuns(answer);
  renderEta(answer);
  document.body.dataset.analytics = 'ready';
}

const session = await loadSession();
const connection = byId('connection');
if (session.state === 'signed-in') {
  connection.dataset.state = 'live';
  connection.textContent = '';
  document.body.dataset.session = 'signed-in';
  for (const button of document.querySelectorAll<HTMLButtonElement>('#window button')) button.addEventListener('click', () => void show(Number(button.dataset.days)));
  await show(1);
} else if (session.state === 'unreachable') {
  connection.dataset.state = 'offline';
  connection.textContent = 'Offline';
}
