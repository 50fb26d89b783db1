/**
 * `node pglite-init.js <folder> [<tarball>]`: creates an embedded database in `folder` and exits;
 * from `tarball` (an empty database made by the build) when it is given and loads, else by
 * initdb. openEmbeddedPostgres runs it in a process of its own: PGlite runs initdb in a second
 * Postgres (WebAssembly) beside the first, and the ~600 MB both grow to would never be given back.
 */
import { readFileSync, rmSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';

const [folder, tarball] = process.argv.slice(2);
if (folder === undefined) {
  process.stderr.write('usage: pglite-init <folder> [<tarball>]\n');
  process.exit(2);
}

async function create(options: { loadDataDir?: Blob }): Promise<void> {
  const pg = await PGlite.create(folder as string, options);
  await pg.close();
}

try {
  let loaded = false;
  if (tarball !== undefined) {
    try {
      await create({ loadDataDir: new Blob([readFileSync(tarball)]) });
      loaded = true;
    } catch (error) {
      // A tarball from another PGlite version, or damaged: initdb makes a database all the same.
      process.stderr.write(`the empty database ${tarball} did not load (${(error as Error).message}); running initdb\n`);
      rmSync(folder, { recursive: true, force: true });
    }
  }
  if (!loaded) await create({});
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
