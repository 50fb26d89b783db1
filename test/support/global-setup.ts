import { execFileSync } from 'node:child_process';

/** The dashboard tests load the bundled scripts: build them once per run, as `npm run build` does. */
export default function setup(): void {
  execFileSync(process.execPath, ['web/build.mjs'], { stdio: 'inherit' });
}
