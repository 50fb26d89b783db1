import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import type { AppEnv } from '../auth.js';
import { OPENAPI_PATH, openApiDocument } from '../openapi.js';
import { pageSecurityHeaders } from '../security-headers.js';

/** swagger-ui-dist's folder in node_modules: the viewer is served from here, never a CDN. */
const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * The viewer's start: a file of its own, as the pages' policy allows no inline script. No
 * validator badge: it is an image from validator.swagger.io (shown for hosts but localhost).
 */
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(OPENAPI_PATH.slice(1))}, dom_id: '#api', deepLinking: true, validatorUrl: null });\n`;

/**
 * `GET /api/openapi.json` (open: the document holds no data, and a client generator needs it
 * before any token) and `GET /docs`, the reference page: Swagger UI from node_modules under the
 * dashboard's own policy (script-src and style-src 'self', no inline, no eval).
 */
export function docsRoutes(basePath = '', frameAncestors: readonly string[] = ["'self'"]) {
  const app = new Hono<AppEnv>();
  // Built at the first request (about 100 ms), not at every app's start.
  const documentJson = lazy(() => JSON.stringify(openApiDocument(basePath)));
  const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>booksai-progress API</title>
    <base href="${basePath}/" />
    <link rel="stylesheet" href="docs/assets/swagger-ui.css" />
  </head>
  <body>
    <div id="api"></div>
    <script src="docs/assets/swagger-ui-bundle.js"></script>
    <script src="docs/assets/init.js"></script>
  </body>
</html>
`;
  const assets: Record<string, { type: string; body: () => string }> = {
    'swagger-ui.css': { type: 'text/css; charset=utf-8', body: lazy(() => readFileSync(join(SWAGGER_UI, 'swagger-ui.css'), 'utf8')) },
    'swagger-ui-bundle.js': { type: 'text/javascript; charset=utf-8', body: lazy(() => readFileSync(join(SWAGGER_UI, 'swagger-ui-bundle.js'), 'utf8')) },
    'init.js': { type: 'text/javascript; charset=utf-8', body: () => INIT_SCRIPT },
  };

  app.get(OPENAPI_PATH, (c) => c.body(documentJson(), 200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache' }));
  app.get('/docs', pageSecurityHeaders(frameAncestors), (c) => c.html(page));
  app.get('/docs/assets/:name', compress(), (c) => {
    const asset = assets[c.req.param('name')];
    if (!asset) return c.notFound();
    return c.body(asset.body(), 200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
  });
  return app;
}

/** Built or read at the first request (the viewer's files are 1.5 MB), not at every app's start. */
function lazy(read: () => string): () => string {
  let value: string | undefined;
  return () => (value ??= read());
}
