import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FaultLog } from '../src/fault-log.js';
import { until } from './support/wait.js';

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

  it('is one per logger, so every part shares the limits and the counts', () => {
    const log = pino({ level: 'silent' });
    expect(FaultLog.of(log)).toBe(FaultLog.of(log));
    expect(FaultLog.of(log)).not.toBe(FaultLog.of(pino({ level: 'silent' })));
  });
});
