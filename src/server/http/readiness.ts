/** What /readyz reports; `ready` only while every part answers and the process is neither draining nor overloaded. */
export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  /** Past OVERLOAD_LOOP_DELAY_MS or OVERLOAD_HEAP_PERCENT: new streams and publishes are refused. */
  overloaded: boolean;
  broker: 'ok' | 'down';
  database: 'ok' | 'down';
}

export interface ReadinessProbes {
  /** Resolves when the broker answered a read (each call bounded by BACKEND_TIMEOUT_MS). */
  broker(): Promise<unknown>;
  /** False while a broker subscription does not deliver (Broker.isLive). */
  brokerLive(): boolean;
  /** Resolves when the database answered a statement. */
  database(): Promise<unknown>;
  /** True from the first moment of shutdown. */
  draining(): boolean;
  /** True while new work is refused for load (LoadMonitor); absent: never. */
  overloaded?(): boolean;
}

/** Load balancers probe every few seconds, from many places: one round of probes serves them all for this long. */
const PROBE_CACHE_MS = 1_000;

/**
 * The readiness signal: whether a load balancer should route new work here. Liveness (/healthz)
 * says only that the process runs; this says its backends answer and it is not shutting down.
 */
export class Readiness {
  readonly #probes: ReadinessProbes;
  #last: { at: number; backends: Promise<Pick<ReadinessReport, 'broker' | 'database'>> } | null = null;

  constructor(probes: ReadinessProbes) {
    this.#probes = probes;
  }

  async check(): Promise<ReadinessReport> {
    const now = Date.now();
    if (this.#last === null || now - this.#last.at >= PROBE_CACHE_MS) this.#last = { at: now, backends: this.#probeBackends() };
    const backends = await this.#last.backends;
    // Draining is read at every call: it must turn the answer to 503 at once, not after the cache.
    const draining = this.#probes.draining();
    const overloaded = this.#probes.overloaded?.() ?? false;
    return { ready: !draining && !overloaded && backends.broker === 'ok' && backends.database === 'ok', draining, overloaded, ...backends };
  }

  async #probeBackends(): Promise<Pick<ReadinessReport, 'broker' | 'database'>> {
    const answers = async (probe: () => Promise<unknown>) => {
      try {
        await probe();
        return 'ok' as const;
      } catch {
        return 'down' as const;
      }
    };
    const [broker, database] = await Promise.all([answers(this.#probes.broker), answers(this.#probes.database)]);
    return { broker: broker === 'ok' && this.#probes.brokerLive() ? 'ok' : 'down', database };
  }
}
