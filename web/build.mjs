// Bundles the dashboard's scripts (and the zod schema they share with the server) for browsers.
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('.', import.meta.url));

export async function buildWeb() {
  await build({
    entryPoints: [`${web}dashboard.ts`, `${web}book-page.ts`, `${web}admin.ts`, `${web}analytics-page.ts`],
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

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb();
