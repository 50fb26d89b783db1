#!/usr/bin/env node
// The booksai-progress command line. In a checkout (src/ and the dev dependency tsx present) it
// runs the source, so it never runs a dist/ older than the code; in the Docker image and after
// `npm run build` without tsx it runs dist/cli/main.js.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return null;
  }
}

const loader = existsSync(source) ? await tsx() : null;
if (loader !== null) {
  loader.register();
  await import(source.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('booksai-progress: neither dist/cli/main.js nor tsx is installed: run `npm ci` (and `npm run build`)\n');
  process.exit(2);
}
