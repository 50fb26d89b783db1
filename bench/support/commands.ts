/**
 * The child side of the orchestrator's line protocol: commands arrive as JSON lines on stdin,
 * events leave as `@bench <json>` lines on stdout (other stdout lines are logs). A child exits
 * when stdin closes (the orchestrator is gone) or its lifetime runs out, so nothing outlives a run.
 */
import { createInterface } from 'node:readline';

export const EVENT_PREFIX = '@bench ';

export type Command = { cmd: string } & Record<string, unknown>;

export function emit(event: { evt: string } & Record<string, unknown>): void {
  process.stdout.write(`${EVENT_PREFIX}${JSON.stringify(event)}\n`);
}

export interface ServeOptions {
  /** The process ends after this long whatever happens. */
  maxLifeMs: number;
  /** Runs before the process exits (stdin end, lifetime, SIGTERM or an `exit` command). */
  onExit?: () => Promise<void> | void;
  /**
   * Replaces exiting: for a process that has its own shutdown (the server under test gets
   * SIGTERM, as in production). No SIGTERM handler is installed then.
   */
  stop?: () => void;
}

/** Runs `handle` for each command, one at a time; a failed command is reported as an `error` event. */
export function serveCommands(handle: (command: Command) => Promise<void> | void, options: ServeOptions): void {
  let queue: Promise<void> = Promise.resolve();
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    if (options.stop) return options.stop();
    const hardStop = setTimeout(() => process.exit(code), 2_000);
    hardStop.unref();
    void Promise.resolve(options.onExit?.())
      .catch(() => {})
      .finally(() => process.exit(code));
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      emit({ evt: 'error', message: `not a JSON command: ${line.slice(0, 80)}` });
      return;
    }
    queue = queue.then(async () => {
      try {
        if (command.cmd === 'exit') return exit(0);
        await handle(command);
      } catch (error) {
        emit({ evt: 'error', cmd: command.cmd, message: (error as Error).stack ?? String(error) });
      }
    });
  });
  lines.on('close', () => exit(0));
  const lifetime = setTimeout(() => exit(2), options.maxLifeMs);
  lifetime.unref();
  if (!options.stop) process.on('SIGTERM', () => exit(0));
}
