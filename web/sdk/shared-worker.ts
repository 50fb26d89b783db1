import { Relay } from './relay.js';
import type { HubMessage, SharedOptions, TabMessage } from './relay.js';

/**
 * The shared worker behind `share: true`: one Relay (one server connection) for every tab of the
 * origin. A tab is dropped when it says so or when its tab lock is released (the tab closed).
 */
const scope = globalThis as unknown as { onconnect: ((event: MessageEvent) => void) | null };

const ports = new Map<string, MessagePort>();
const asking = new Map<number, { resolve: (token: string) => void; reject: (error: Error) => void }>();
let relay: Relay | null = null;
let asked = 0;

const send = (message: HubMessage, tab?: string) => {
  if (tab !== undefined) ports.get(tab)?.postMessage(message);
  else for (const port of ports.values()) port.postMessage(message);
};

/** A token, asked of the first tab that has one (tabs hold the page's getToken). */
const askToken = (context: { refresh: boolean }) =>
  new Promise<string>((resolve, reject) => {
    const port = ports.values().next().value;
    if (!port) return reject(new Error('no tab to ask for a token'));
    const n = ++asked;
    asking.set(n, { resolve, reject });
    port.postMessage({ t: 'token?', n, refresh: context.refresh } satisfies HubMessage);
    setTimeout(() => asking.delete(n) && reject(new Error('no token within 10 s')), 10_000);
  });

const configure = (options: SharedOptions) => {
  const { hasGetToken, ...rest } = options;
  relay = new Relay({ ...rest, ...(hasGetToken && { getToken: askToken }) }, send);
};

scope.onconnect = (event) => {
  const port = event.ports[0];
  if (!port) return;
  port.onmessage = (e: MessageEvent<TabMessage>) => {
    const m = e.data;
    if (m.t === 'config') {
      if (!relay) configure(m.options);
    } else if (m.t === 'watch') {
      ports.set(m.tab, port);
      relay?.join(m.tab, m.books);
      // Granted once the tab no longer holds its lock: it closed, crashed or left.
      void navigator.locks.request(`booksai-progress-tab:${m.tab}`, () => {
        ports.delete(m.tab);
        relay?.leave(m.tab);
      });
    } else if (m.t === 'leave') {
      ports.delete(m.tab);
      relay?.leave(m.tab);
    } else if (m.t === 'token') {
      const waiting = asking.get(m.n);
      asking.delete(m.n);
      if (m.value !== undefined) waiting?.resolve(m.value);
      else waiting?.reject(new Error(m.error ?? 'no token'));
    }
  };
  port.start();
};
