// Bundles the dashboard's scripts and the shared worker for browsers (web/dist, served at /assets),
// and the `booksai-progress/client` and `/react` package modules (dist/client).
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

export async function buildWeb() {
  await build({
    entryPoints: [`${web}dashboard.ts`, `${web}book-page.ts`, `${web}admin.ts`, `${web}analytics-page.ts`, { in: `${web}sdk/shared-worker.ts`, out: 'shared-worker' }],
    outdir: `${web}dist`,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  await mkdir(`${web}dist`, { recursive: true });
  await copyFile(`${web}style.css`, `${web}dist/style.css`);
  await copyFile(`${web}admin.css`, `${web}dist/admin.css`);
  // The charts' library (uPlot, bundled into analytics-page.js) and its stylesheet: served from here, no CDN.
  await copyFile(fileURLToPath(new URL('../node_modules/uplot/dist/uPlot.min.css', import.meta.url)), `${web}dist/uPlot.min.css`);
}

/** The package's client modules: plain ES modules, no bundler needed; React stays the caller's. */
export async function buildClientPackage() {
  await build({
    entryPoints: [`${web}sdk/client.ts`, `${web}sdk/react.ts`, `${web}sdk/shared-worker.ts`],
    outdir: `${root}dist/client`,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    external: ['react'],
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildWeb();
  if (process.argv.includes('--package')) await buildClientPackage();
}
