import { MemoryBroker } from '../../src/broker/memory.js';
import { brokerContract } from './contract.js';

brokerContract('memory', async () => new MemoryBroker({ ttlSeconds: 60 }));
