// Child of data-dir-lock.test.ts: takes the lock at a given moment, says whether it got it, holds it a while.
import { DataDirLock } from '../../src/store/data-dir-lock.js';

const [dir, at] = process.argv.slice(2);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(at) - Date.now())));
try {
  DataDirLock.take(dir as string);
  process.stdout.write('got\n');
} catch {
  process.stdout.write('refused\n');
}
await new Promise((resolve) => setTimeout(resolve, 1_500));
