import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import type { AppEnv } from '../auth.js';
import { pageSecurityHeaders } from '../security-headers.js';

/** web/ at the project root: four levels up from both src/server/http/routes and dist/server/http/routes. */
export const WEB_ROOT = fileURLToPath(new URL('../../../../web', import.meta.url));

/**
 * The dashboard: `/` lists books, `/book/:bookId` shows one, `/analytics` charts the recorded runs; scripts bundled into web/dist by
 * `npm run build`. The pages' links and the scripts' URLs are relative to the page's
 * `<base href>`, which is set here to BASE_PATH, so the dashboard works under any prefix.
 */
export function webRoutes(webRoot = WEB_ROOT, basePath = '', frameAncestors: readonly string[] = ["'self'"]) {
  const app = new Hono<AppEnv>();
  const pageHeaders = pageSecurityHeaders(frameAncestors);
  const page = (name: string) => readFileSync(join(webRoot, name), 'utf8').replace('<base href="/" />', `<base href="${basePath}/" />`);
  const listPage = page('index.html');
  const bookPage = page('book.html');
  const analyticsPage = page('analytics.html');
  const adminPage = page('admin.html');

  app.get('/', pageHeaders, (c) => c.html(listPage));
  app.get('/book/:bookId', pageHeaders, (c) => c.html(bookPage));
  app.get('/analytics', pageHeaders, (c) => c.html(analyticsPage));
  // The operator view: a page without data; what it shows comes from GET /api/admin/status (admin).
  app.get('/admin', pageHeaders, (c) => c.html(adminPage));
  // A worker runs under the policy its script is served with: the page's, so its streams and polls may reach this server.
  app.use('/assets/shared-worker.js', pageHeaders);
  app.use('/assets/*', compress(), async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-cache');
    // compress() sets Vary: Accept-Encoding, which would replace the Vary: Origin of the CORS layer.
    if (c.res.headers.has('Vary')) c.header('Vary', 'Origin', { append: true });
  });
  app.use(
    '/assets/*',
    serveStatic({ root: join(webRoot, 'dist'), rewriteRequestPath: (path) => path.replace(/^\/assets/, '') }),
  );
  return app;
}
