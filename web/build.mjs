// Bundles the dashboard's scripts (and the zod schema they share with the server) for browsers.
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('.', import.meta.url));

export async function buildWeb() {
  await build({
    entryPoints: [`${web}dashboard.ts`, `${web}book-page.ts`, `${web}admin.ts`],
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
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWeb();
