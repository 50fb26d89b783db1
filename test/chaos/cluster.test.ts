import { describe } from 'vitest';
import { campaignTest } from './campaign.js';

describe('npm run chaos -- --duration 60s, a 3-master Redis Cluster', () => campaignTest('cluster'));
