import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FaultLog, RECENT_FAULT_LINES } from '../src/fault-log.js';
import { until, waitOut } from './support/wait.js';

function logged(): { faults: FaultLog; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void raw.push(line) });
  return { faults: new FaultLog(log, 200), lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('FaultLog', () => {
  it('logs the first fault of a kind at once, then one line per interval with the count', async () => {
    const { faults, lines } = logged();
    for (let i = 0; i < 500; i++) faults.report('redis_unavailable', 'redis did not answer', { err: 'Command timed out' });
    faults.report('database_unavailable', 'database unavailable');
    expect(lines()).toMatchObject([
      { fault: 'redis_unavailable', msg: 'redis did not answer', err: 'Command timed out' },
      { fault: 'database_unavailable' },
    ]);

    await until(() => lines().length === 3, 2_000, 'the count of the first interval');
    expect(lines()[2]).toMatchObject({ fault: 'redis_unavailable', count: 499, msg: 'redis did not answer (499 more in the last 0.2 s)' });
    expect(faults.totals()).toEqual(new Map([['redis_unavailable', 500], ['database_unavailable', 1]]));

    // The fault goes on: still one line per interval, with that interval's count.
    faults.report('redis_unavailable', 'redis did not answer');
    faults.report('redis_unavailable', 'redis did not answer');
    expect(lines()).toHaveLength(3);
    await until(() => lines().length === 4, 2_000, 'the count of the second interval');
    expect(lines()[3]).toMatchObject({ fault: 'redis_unavailable', count: 2 });
  });

  it('keeps the last RECENT_FAULT_LINES lines it logged for the operator view, oldest first', async () => {
    const { faults, lines } = logged();
    faults.report('redis_unavailable', 'redis did not answer', { err: 'timeout' });
    faults.report('redis_unavailable', 'redis did not answer', { err: 'timeout' });
    await until(() => lines().length === 2, 2_000, 'the count of the interval');
    expect(faults.recent()).toMatchObject([
      { kind: 'redis_unavailable', message: 'redis did not answer', detail: { err: 'timeout' } },
      { kind: 'redis_unavailable', message: 'redis did not answer', count: 1 },
    ]);
    expect(faults.recent()[0]).not.toHaveProperty('count');

    // Past RECENT_FAULT_LINES, the oldest go: an interval of 1 ms lets each report log its line.
    const raw: string[] = [];
    const ring = new FaultLog(pino({ level: 'info' }, { write: (line: string) => void raw.push(line) }), 1);
    for (let i = 0; i < RECENT_FAULT_LINES + 5; i++) {
      ring.report('snapshot_failed', `line ${i}`);
      await waitOut(3);
    }
    expect(raw).toHaveLength(RECENT_FAULT_LINES + 5);
    expect(ring.recent()).toHaveLength(RECENT_FAULT_LINES);
    expect(ring.recent()[0]?.message).toBe('line 5');
    expect(ring.recent().at(-1)?.message).toBe(`line ${RECENT_FAULT_LINES + 4}`);
  });

  it('is one per logger, so every part shares the limits and the counts', () => {
    const log = pino({ level: 'silent' });
    expect(FaultLog.of(log)).toBe(FaultLog.of(log));
    expect(FaultLog.of(log)).not.toBe(FaultLog.of(pino({ level: 'silent' })));
  });
});
