// One tab of test/web/tabs.test.ts: watches the book in ?book= with the tab-shared connection
// (?share=worker: the server's shared worker; ?share=leader: a leader tab), and shows it
// (with ?pause: not while hidden).
import { watchBooks } from '../../../web/sdk/client.js';

const params = new URLSearchParams(location.search);
const book = params.get('book') ?? '';
const tab = { version: 0, versions: [] as number[], connection: '', transport: '', calls: 0, kept: () => watching.current.books.get(book)?.version ?? 0 };
(window as unknown as { tab: typeof tab }).tab = tab;
const watching = watchBooks(
  [book],
  (update) => {
    tab.calls++;
    const version = update.books.get(book)?.version ?? 0;
    if (version !== tab.version) tab.versions.push(version);
    tab.version = version;
    tab.connection = update.connection;
    tab.transport = update.transport;
    document.body.textContent = `${book} v${version} ${update.connection} ${update.transport}`;
  },
  {
    share: params.get('share') === 'worker' ? true : 'leader',
    sharedWorkerUrl: 'assets/shared-worker.js',
    pauseWhenHidden: params.has('pause'),
    // ?auth: tokens from the test (page.exposeFunction), asked for through the shared connection.
    ...(params.has('auth') && { getToken: ({ refresh }: { refresh: boolean }) => (window as unknown as { nextToken: (r: boolean) => Promise<string> }).nextToken(refresh) }),
  },
);
