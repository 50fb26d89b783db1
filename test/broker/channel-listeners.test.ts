import { describe, expect, it } from 'vitest';
import { ChannelListeners } from '../../src/broker/channel-listeners.js';

/** A subscriber that records what it was asked; each SUBSCRIBE is confirmed when the test says. */
function recordingSubscriber() {
  const calls: string[] = [];
  const confirms: Array<() => void> = [];
  return {
    calls,
    confirmAll: () => confirms.splice(0).forEach((confirm) => confirm()),
    add: (channel: string) => {
      calls.push(`add ${channel}`);
      return new Promise<void>((resolve) => confirms.push(resolve));
    },
    remove: (channel: string) => void calls.push(`remove ${channel}`),
  };
}

describe('ChannelListeners', () => {
  it('subscribes a channel once, resolves every listener only once it is confirmed, and unsubscribes after the last', async () => {
    const subscriber = recordingSubscriber();
    const channels = new ChannelListeners<string>(subscriber);
    let resolved = 0;
    const adds = ['a', 'b'].map((listener) => channels.add('ch', listener).then((off) => (resolved++, off)));
    await Promise.resolve();
    expect(resolved).toBe(0);
    subscriber.confirmAll();
    const [offA, offB] = await Promise.all(adds);
    expect(subscriber.calls).toEqual(['add ch']);
    expect([...(channels.of('ch') ?? [])]).toEqual(['a', 'b']);
    offA!();
    expect(subscriber.calls).toEqual(['add ch']);
    offB!();
    expect(subscriber.calls).toEqual(['add ch', 'remove ch']);
    expect(channels.size).toBe(0);
  });

  it('keeps the channel for a listener still waiting when the only other one leaves', async () => {
    const subscriber = recordingSubscriber();
    const channels = new ChannelListeners<string>(subscriber);
    const first = channels.add('ch', 'first');
    subscriber.confirmAll();
    const offFirst = await first;
    const second = channels.add('ch', 'second'); // waits for the (confirmed) subscription
    offFirst();
    await second;
    expect(subscriber.calls).toEqual(['add ch']);
    expect([...(channels.of('ch') ?? [])]).toEqual(['second']);
  });
});
