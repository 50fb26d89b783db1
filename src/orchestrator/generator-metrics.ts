import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';

/** What an AI service reports having counted for one call (the `usage` of chat completions). */
export interface TokenUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * Counters of the generator's calls, one set per process: a generator counts into it, and the
 * server shows it on /metrics (registerGeneratorMetrics). Calls that fail before the service
 * reports usage are not counted: their tokens are unknown.
 */
export class GeneratorMetrics {
  readonly tokens = new Counter({
    name: 'booksai_generator_tokens_total',
    help: 'Tokens of the AI service calls of the generator, as the service counted them, by kind: prompt (read) or completion (written)',
    labelNames: ['kind'] as const,
    registers: [],
  });

  constructor() {
    // Both series from the start, so a rate() over them has a beginning.
    this.tokens.inc({ kind: 'prompt' }, 0);
    this.tokens.inc({ kind: 'completion' }, 0);
  }

  count(usage: TokenUsage): void {
    if (usage.prompt_tokens > 0) this.tokens.inc({ kind: 'prompt' }, usage.prompt_tokens);
    if (usage.completion_tokens > 0) this.tokens.inc({ kind: 'completion' }, usage.completion_tokens);
  }
}

/** Shows `metrics` on the server's /metrics registry. */
export function registerGeneratorMetrics(registry: Registry, metrics: GeneratorMetrics): void {
  registry.registerMetric(metrics.tokens);
}
