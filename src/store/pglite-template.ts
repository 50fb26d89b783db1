/**
 * `node dist/store/pglite-template.js`, run by `npm run build`: writes a new, empty embedded
 * database as a tarball (EMPTY_DATABASE_TARBALL), so a first start unpacks it (~1 s) instead of
 * running initdb (3-5 s). Made from the installed PGlite, so it always matches it.
 */
import { writeFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { EMPTY_DATABASE_TARBALL } from './pglite.js';

const pg = await PGlite.create();
const tarball = await pg.dumpDataDir('gzip');
await pg.close();
writeFileSync(EMPTY_DATABASE_TARBALL, Buffer.from(await tarball.arrayBuffer()));
