import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { watch } from '../../web/client.js';
import type { SectionTextUpdate, Watching } from '../../web/client.js';
import { bookId } from '../server/http.js';
import { serverForFile } from '../support/service.js';
import { until } from '../support/wait.js';

const server = serverForFile();
let watching: Watching | null = null;
afterEach(() => {
  watching?.close();
  watching = null;
});

async function append(id: string, chapter: number, section: number, text: string): Promise<void> {
  const offset = (await server.service.texts.read(id, chapter, section))?.length ?? 0;
  const result = await server.service.texts.append(id, { chapter, section, offset }, text);
  if (!result.ok) throw new Error(JSON.stringify(result));
}

describe('web client with text', () => {
  it('onText sees each section grow (merged), across a reconnect it never notices, and a reset', async () => {
    const id = bookId('client-text');
    await server.service.tracker.updateProgress(id, { status: 'GENERATING', message: 'writing' });
    await server.service.texts.beginSection(id, 1, 1);
    const updates: SectionTextUpdate[] = [];
    const states: string[] = [];
    watching = watch([id], () => {}, { EventSource, baseUrl: server.url, text: true, onText: (u) => updates.push(u), onConnection: (s) => states.push(s) });
    await until(() => states.includes('live'), 5_000, 'the live stream');
    const words = Array.from({ length: 100 }, (_, i) => `w${i} `);
    for (const word of words.slice(0, 50)) await append(id, 1, 1, word);
    await until(() => updates.at(-1)?.text === words.slice(0, 50).join(''), 5_000, 'the first half');
    // The server ends every stream (a restart): the client resumes where it was.
    server.service.streams.closeAll(50);
    for (const word of words.slice(50)) await append(id, 1, 1, word);
    await until(() => updates.at(-1)?.text === words.join(''), 10_000, 'the second half');
    expect(states.filter((s) => s === 'live').length).toBeGreaterThanOrEqual(2);
    // Merged: far fewer calls than chunks; the pieces added add up to the text, nothing twice.
    expect(updates.length).toBeLessThan(60);
    expect(updates.map((u) => u.added).join('')).toBe(words.join(''));
    expect(updates.every((u) => !u.reset)).toBe(true);

    await server.service.texts.beginSection(id, 1, 1);
    await append(id, 1, 1, 'started over');
    await until(() => updates.at(-1)?.text === 'started over', 5_000, 'the reset');
    expect(updates.some((u) => u.reset)).toBe(true);
  });
});
