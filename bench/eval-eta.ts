import { CHECKPOINTS, DEFAULT_REPLAY, replayEta } from './eta-replay.js';

/** `npm run eval:eta [seed] [runs]`: the learned ETA against the linear one on synthetic runs; exits 1 when a floor fails. */
const seed = Number(process.argv[2] ?? DEFAULT_REPLAY.seed);
const runs = Number(process.argv[3] ?? DEFAULT_REPLAY.runs);
const report = replayEta({ ...DEFAULT_REPLAY, seed, runs });
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

const lines = [
  `ETA replay: seed ${seed}, ${report.scored} runs scored (after ${report.options.warmup} warm-up runs), model refreshed every ${report.options.refreshEvery} runs from the last ${report.options.historyLimit}`,
  '',
  `| estimator | ${CHECKPOINTS.map((c) => `MAPE @ ${c * 100} %`).join(' | ')} | no estimate | moved later > 10 % (updates / runs) | late bound covers |`,
  `| --- | ${CHECKPOINTS.map(() => '---').join(' | ')} | --- | --- | --- |`,
  `| learned | ${report.learned.mape.map(pct).join(' | ')} | ${pct(report.learned.missing)} | ${pct(report.learned.jumpsLater)} / ${pct(report.learned.runsWithJump)} | ${pct(report.learned.lateCoverage)} (${report.learned.lateCoverageAt.map(pct).join(', ')}) |`,
  `| linear | ${report.linear.mape.map(pct).join(' | ')} | ${pct(report.linear.missing)} | ${pct(report.linear.jumpsLater)} / ${pct(report.linear.runsWithJump)} | — |`,
  '',
  ...report.floors.map((f) => `${f.pass ? 'PASS' : 'FAIL'}  ${f.name}: ${f.name.startsWith('late') ? pct(f.value) : f.value.toFixed(3)} (${f.limit})`),
];
process.stdout.write(`${lines.join('\n')}\n`);
process.exitCode = report.floors.every((f) => f.pass) ? 0 : 1;
