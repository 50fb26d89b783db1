import type { BookProgress } from '../progress/schema.js';
import { estimate } from './eta-model.js';
import type { EtaRefresher } from './eta-refresher.js';

/**
 * The tracker's `estimate` option: the refresher's current model (no I/O on the publish path);
 * null while it has none or does not know the current step, so the linear estimate stands.
 */
export function learnedEstimate(refresher: Pick<EtaRefresher, 'model'>) {
  return (state: BookProgress, stepStartedAt: number | undefined, now: number): { estimatedEndTime: number; estimatedEndTimeLate?: number } | null => {
    const model = refresher.model;
    if (model === null) return null;
    const eta = estimate(model, stepStartedAt === undefined ? state : { ...state, stepStartedAt }, now);
    if (eta.source !== 'learned' || eta.estimatedEndTime === undefined) return null;
    return eta.estimatedEndTimeLate === undefined ? { estimatedEndTime: eta.estimatedEndTime } : { estimatedEndTime: eta.estimatedEndTime, estimatedEndTimeLate: eta.estimatedEndTimeLate };
  };
}
