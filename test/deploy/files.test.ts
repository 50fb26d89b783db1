import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_HEARTBEAT_MS, loadConfig } from '../../src/config.js';
import { NGINX_CONF } from '../support/nginx-process.js';

/** There is no Docker engine here: these read the deployment files the way Docker and nginx would rely on them. */
interface ComposeService {
  build?: string;
  image?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, ComposeService> };
const nginx = readFileSync(NGINX_CONF, 'utf8');
const dockerfile = readFileSync('Dockerfile', 'utf8');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

/** nginx directives without comments, one string per directive. */
const directives = nginx
  .split('\n')
  .map((line) => line.replace(/#.*$/, '').trim())
  .join(' ')
  .split(/[;{}]/)
  .map((d) => d.trim().replace(/\s+/g, ' '))
  .filter((d) => d !== '');

describe('docker-compose.yml', () => {
  const { services } = compose;
  const app = services['booksai-progress'] as ComposeService;

  it('runs the app (built from the Dockerfile), Redis, Postgres and nginx, the app on the other three', () => {
    expect(Object.keys(services).sort()).toEqual(['booksai-progress', 'nginx', 'postgres', 'redis']);
    expect(app.build).toBe('.');
    const env = app.environment ?? {};
    expect(new URL(env.REDIS_URL ?? '').host).toBe('redis:6379');
    const db = new URL(env.DATABASE_URL ?? '');
    const pg = services.postgres?.environment ?? {};
    expect([db.hostname, db.port, db.username, db.password, db.pathname]).toEqual(['postgres', '5432', pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, `/${pg.POSTGRES_DB}`]);
    expect(env.TRUST_PROXY).toBe('true');
    // The image's NODE_ENV=production needs authentication: compose asks for the secret.
    expect(env.AUTH_JWT_SECRET).toMatch(/^\$\{AUTH_JWT_SECRET:\?.+\}$/);
    const imageEnv = Object.fromEntries([...(/^ENV (.+)$/m.exec(dockerfile)?.[1] ?? '').matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    expect(imageEnv.NODE_ENV).toBe('production');
    const started = { ...imageEnv, ...env, AUTH_JWT_SECRET: 'x'.repeat(32) };
    expect(() => loadConfig(started)).not.toThrow();
    expect(() => loadConfig({ ...started, AUTH_JWT_SECRET: undefined })).toThrow(/AUTH_JWT_SECRET/);
    expect(Object.keys(app.depends_on ?? {}).sort()).toEqual(['postgres', 'redis']);
  });

  it('mounts the committed nginx.conf, whose upstream is the app service on its PORT', () => {
    expect(services.nginx?.volumes).toContain(`./${NGINX_CONF}:/etc/nginx/nginx.conf:ro`);
    expect(directives).toContain(`server booksai-progress:${app.environment?.PORT}`);
    expect(directives).toContain('listen 80');
    expect(services.nginx?.ports).toEqual(['8080:80']);
  });

  it('checks the app by readiness on its PORT, and starts nginx once the app is ready', () => {
    const probe = app.healthcheck?.test.join(' ') ?? '';
    expect(probe).toContain(`http://127.0.0.1:${app.environment?.PORT}/readyz`);
    expect(services.nginx?.depends_on).toEqual({ 'booksai-progress': { condition: 'service_healthy' } });
  });
});

describe('deploy/nginx.conf', () => {
  it('passes the WebSocket upgrade on, and keeps other requests on keep-alive', () => {
    // Only "websocket" is passed on as an upgrade; anything else goes upstream as a plain request.
    expect(nginx).toMatch(/map \$http_upgrade \$connection_upgrade \{\s*~\*\^websocket\$ +upgrade;\s*default +'';\s*\}/);
    expect(nginx).toMatch(/map \$http_upgrade \$websocket_upgrade \{\s*~\*\^websocket\$ +websocket;\s*default +'';\s*\}/);
    expect(directives).toContain('proxy_http_version 1.1');
    expect(directives).toContain('proxy_set_header Upgrade $websocket_upgrade');
    expect(directives).toContain('proxy_set_header Connection $connection_upgrade');
    expect(directives).not.toContain("proxy_set_header Connection ''");
  });

  it('streams unbuffered, with a read timeout above the longest heartbeat period, and forwards the client and host', () => {
    expect(directives).toContain('proxy_buffering off');
    expect(directives).toContain('proxy_cache off');
    const timeout = directives.find((d) => d.startsWith('proxy_read_timeout '));
    expect(Number(/(\d+)s$/.exec(timeout ?? '')?.[1]) * 1000).toBeGreaterThan(MAX_HEARTBEAT_MS);
    expect(directives).toContain('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for');
    expect(directives).toContain('proxy_set_header Host $http_host');
  });

  it('logs no query string (tokens ride in ?access_token=), and drops upstream connections before Node does', () => {
    const format = directives.find((d) => d.startsWith('log_format booksai '));
    expect(format).toBeDefined();
    expect(format).not.toMatch(/\$request\b|\$args|\$query_string|\$request_uri/);
    expect(directives).toContain('access_log /var/log/nginx/access.log booksai');
    const keepalive = directives.find((d) => d.startsWith('keepalive_timeout '));
    expect(Number(/(\d+)s$/.exec(keepalive ?? '')?.[1]) * 1000).toBeLessThan(5_000); // Node's keepAliveTimeout
  });

  it('is quoted whole in docs/nginx.md', () => {
    const page = readFileSync('docs/nginx.md', 'utf8');
    const start = nginx.indexOf('http {');
    expect(page).toContain(nginx.slice(start).trim());
  });
});

describe('Dockerfile', () => {
  it('copies only what exists, runs what npm start runs, and checks health under BASE_PATH', () => {
    for (const [, from] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const path of (from as string).split(' ')) expect(existsSync(path), path).toBe(true);
    const start = pkg.scripts.start?.split(' ') ?? [];
    expect(JSON.parse(/^CMD (.+)$/m.exec(dockerfile)?.[1] ?? '[]')).toEqual(start);
    expect(pkg.scripts.build).toContain('pglite-template.js'); // the build stage makes the empty embedded database dist/ carries
    expect(dockerfile).toMatch(/HEALTHCHECK .*process\.env\.BASE_PATH.*\/healthz/);
    expect(dockerfile).toContain(`EXPOSE ${compose.services['booksai-progress']?.environment?.PORT}`);
  });
});
