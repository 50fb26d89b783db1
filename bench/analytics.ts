/**
 * `npm run bench:analytics [runs]`: GET /api/analytics' queries (analytics() and the ETA-accuracy
 * read) over 100,000 recorded runs (default) in the benchmark's own database: 30 days of runs
 * over 10 tenants, 5 chapters of 2 sections each (21 spans a run, 2.1 M span rows), 5 % failed.
 * Reports the median and worst of 5 answers per window, all tenants and one. KEEP_DATABASE=1 keeps
 * the database for EXPLAIN (drop it afterwards).
 */
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { analytics, recentCompletedRuns } from '../src/analytics/queries.js';
import { migrateDatabase } from '../src/store/database.js';
import type { Database } from '../src/store/database.js';
import * as schema from '../src/store/schema.js';
import { createDatabase, databaseUrl, dropDatabase } from './support/postgres.js';

const RUNS = Number(process.argv[2] ?? 100_000);
const DAY = 86_400_000;
const END = Date.UTC(2026, 11, 1);
const START = END - 30 * DAY;
const name = `bench_analytics_${randomBytes(4).toString('hex')}`;

await createDatabase(name);
const url = databaseUrl(name);
const sql = postgres(url, { max: 2, onnotice: () => {}, fetch_types: false });
try {
  await migrateDatabase(url);
  const loadStart = performance.now();
  // Run i starts at an even spread over 30 days; step j of a run lasts 2-20 s, each section 3-9 s.
  await sql.unsafe(`
    insert into run_timelines (book_id, started_at, tenant, status, ended_at, duration_ms, error, total_chapters, total_sections, version, cursor)
    select 'book-' || i, to_timestamp((${START} + i::bigint * ${Math.floor((END - START) / RUNS)}) / 1000.0), 'tenant-' || (i % 10),
      case when i % 20 = 0 then 'ERROR' else 'COMPLETE' end,
      to_timestamp((${START} + i::bigint * ${Math.floor((END - START) / RUNS)} + 120000 + (i % 97) * 1000) / 1000.0),
      120000 + (i % 97) * 1000, case when i % 20 = 0 then 'failed' end, 5, 2, 30, '{}'::jsonb
    from generate_series(1, ${RUNS}) as i`);
  await sql.unsafe(`
    insert into run_spans (book_id, run_started_at, tenant, kind, step, chapter, section, started_at, ended_at, duration_ms, exact)
    select r.book_id, r.started_at, r.tenant, s.kind, s.step, s.chapter, s.section, r.started_at, r.started_at + make_interval(secs => s.ms / 1000.0), s.ms, true
    from run_timelines r cross join lateral (
      select 'step' as kind, st as step, 0 as chapter, 0 as section, 2000 + (abs(hashtext(r.book_id || st)) % 18000) as ms
        from unnest(array['PLANNING','RESEARCH','OUTLINE','STRUCTURE','CHAPTERS','PROOFREADING']) as st
      union all select 'chapter', 'CHAPTERS', c, 0, 6000 + (abs(hashtext(r.book_id || c)) % 12000) from generate_series(1, 5) as c
      union all select 'section', 'CHAPTERS', c, sec, 3000 + (abs(hashtext(r.book_id || c || sec)) % 6000) from generate_series(1, 5) as c, generate_series(1, 2) as sec
    ) s`);
  await sql.unsafe('analyze run_timelines; analyze run_spans');
  const [{ spans }] = (await sql`select count(*)::int as spans from run_spans`) as unknown as [{ spans: number }];
  process.stdout.write(`loaded ${RUNS} runs, ${spans} spans in ${((performance.now() - loadStart) / 1000).toFixed(1)} s\n\n`);

  const db = drizzle(sql, { schema }) as unknown as Database;
  const windows: Array<[string, number]> = [
    ['1 day', DAY],
    ['7 days', 7 * DAY],
    ['30 days (all 100,000 runs)', 30 * DAY],
  ];
  process.stdout.write('| window | tenants | runs in window | analytics() median / worst | + ETA accuracy read (500 runs) median / worst |\n| --- | --- | --- | --- | --- |\n');
  for (const [label, span] of windows) {
    for (const tenant of [undefined, 'tenant-3']) {
      const window = { since: END - span, until: END + 1, ...(tenant === undefined ? {} : { tenant }) };
      const a: number[] = [];
      const b: number[] = [];
      let started = 0;
      for (let i = 0; i < 6; i++) {
        const t0 = performance.now();
        const figures = await analytics(db, window);
        const t1 = performance.now();
        await recentCompletedRuns(db, 500, window);
        const t2 = performance.now();
        // The first answer warms the cache: not counted.
        if (i > 0) {
          a.push(t1 - t0);
          b.push(t2 - t1);
        }
        started = figures.runs.started;
      }
      const fmt = (xs: number[]) => `${xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!.toFixed(0)} ms / ${xs.at(-1)!.toFixed(0)} ms`;
      process.stdout.write(`| ${label} | ${tenant ?? 'all'} | ${started} | ${fmt(a)} | ${fmt(b)} |\n`);
    }
  }
} finally {
  await sql.end({ timeout: 5 });
  if (process.env.KEEP_DATABASE === '1') process.stdout.write(`kept database ${name}\n`);
  else await dropDatabase(name);
}
