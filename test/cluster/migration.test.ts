import { describe, expect, it } from 'vitest';
import { clusterKeys, slotOf } from '../../src/broker/cluster-keys.js';
import { pace } from '../support/wait.js';
import { booksOnEveryMaster, publishThrough, twoServersOnCluster } from './scenario.js';

/** Two server processes on a six-node cluster while a slot holding books moves between masters. */
const pair = twoServersOnCluster();
const { prefix } = pair;

/** Moves `slot` to `target` as redis-cli --cluster reshard does: IMPORTING/MIGRATING, MIGRATE key batches, SETSLOT NODE. */
async function migrateSlot(slot: number, source: { port: number; id: string }, target: { port: number; id: string }): Promise<number> {
  await pair.cluster.command(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
  await pair.cluster.command(source.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
  let moved = 0;
  for (;;) {
    const keys = (await pair.cluster.command(source.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 2)) as string[];
    if (keys.length === 0) break;
    await pair.cluster.command(source.port, 'MIGRATE', '127.0.0.1', target.port, '', 0, 5_000, 'KEYS', ...keys);
    moved += keys.length;
    // A pause between batches, as a large slot takes: publishers meet the slot half moved.
    await pace(200);
  }
  for (const port of [target.port, source.port, ...(await pair.cluster.masters()).map((m) => m.port)]) {
    await pair.cluster.command(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
  }
  return moved;
}

describe('Redis Cluster slot migration under load, two server processes', () => {
  it('moves a slot holding books while they are published and watched: nothing lost, every watcher on the latest state', async () => {
    const books = await booksOnEveryMaster(pair.cluster, prefix, 3, 'moving');
    const slot = slotOf(clusterKeys(prefix).state(books[0]!));
    let moved = 0;
    await publishThrough(
      pair.scenario(books, async () => {
        const masters = await pair.cluster.masters();
        const sourcePort = await pair.cluster.ownerOf(slot);
        const source = masters.find((m) => m.port === sourcePort)!;
        const target = masters.find((m) => m.port !== sourcePort)!;
        moved = await migrateSlot(slot, source, target);
        expect(await pair.cluster.ownerOf(slot)).toBe(target.port);
      }),
    );
    // The state, the dirty set and the claim keys of the partition moved together.
    expect(moved).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
