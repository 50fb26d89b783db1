import { describe } from 'vitest';
import { campaignTest } from './campaign.js';

describe('npm run chaos -- --duration 60s, one Redis', () => campaignTest('single'));
