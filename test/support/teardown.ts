import { afterEach } from 'vitest';

/**
 * What one test opened, let go after it in an order that cannot hang: gates first (closing a
 * service waits for runs held at one), injected faults healed, watchers closed, then services
 * closed, fault proxies closed and backend processes stopped.
 */
export class Teardown {
  readonly #gates: Array<{ open(): void }> = [];
  readonly #faults: Array<{ heal(): void; close(): Promise<void> }> = [];
  readonly #watches: Array<{ close(): void }> = [];
  readonly #services: Array<{ close(): Promise<void> }> = [];
  readonly #processes: Array<{ stop(): Promise<unknown> }> = [];

  gate<T extends { open(): void }>(gate: T): T {
    this.#gates.push(gate);
    return gate;
  }

  fault<T extends { heal(): void; close(): Promise<void> }>(proxy: T): T {
    this.#faults.push(proxy);
    return proxy;
  }

  watch<T extends { close(): void }>(watch: T): T {
    this.#watches.push(watch);
    return watch;
  }

  service<T extends { close(): Promise<void> }>(service: T): T {
    this.#services.push(service);
    return service;
  }

  /** A backend process (a private redis-server) stopped after the services that use it. */
  process<T extends { stop(): Promise<unknown> }>(process: T): T {
    this.#processes.push(process);
    return process;
  }

  /** Closes `service` now, and not again after the test. */
  async close(service: { close(): Promise<void> }): Promise<void> {
    const i = this.#services.indexOf(service);
    if (i >= 0) this.#services.splice(i, 1);
    await service.close();
  }

  async run(): Promise<void> {
    for (const gate of this.#gates.splice(0)) gate.open();
    const faults = this.#faults.splice(0);
    for (const fault of faults) fault.heal();
    for (const watch of this.#watches.splice(0)) watch.close();
    for (const service of this.#services.splice(0)) await service.close();
    for (const fault of faults) await fault.close();
    for (const process of this.#processes.splice(0)) await process.stop();
  }
}

/** A Teardown run after each test of the file. */
export function teardownAfterEach(): Teardown {
  const teardown = new Teardown();
  afterEach(() => teardown.run());
  return teardown;
}
