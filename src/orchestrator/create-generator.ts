import type { Config } from '../config.js';
import { DemoGenerator } from './demo-generator.js';
import type { Generator } from './generator.js';
import type { GeneratorMetrics } from './generator-metrics.js';
import { OpenAIGenerator } from './openai-generator.js';

/** The generator GENERATOR names: the demo (no AI service), or an OpenAI-compatible API. */
export function createGenerator(config: Config, metrics: GeneratorMetrics): Generator {
  const settings = config.generator;
  if (settings.kind === 'openai') return new OpenAIGenerator({ ...settings, metrics });
  return new DemoGenerator(config.demoStepMs, { failureRate: config.demoFailureRate, tokensPerSecond: config.demoTokensPerSecond });
}
