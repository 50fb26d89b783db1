import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_HEARTBEAT_MS } from '../../src/config.js';
import { NGINX_CONF } from '../support/nginx-process.js';

/** There is no Docker engine here: these read the deployment files the way Docker and nginx would rely on them. */
interface ComposeService {
  build?: string;
  image?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
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
    expect(Object.keys(app.depends_on ?? {}).sort()).toEqual(['postgres', 'redis']);
  });

  it('mounts the committed nginx.conf, whose upstream is the app service on its PORT', () => {
    expect(services.nginx?.volumes).toContain(`./${NGINX_CONF}:/etc/nginx/nginx.conf:ro`);
    expect(directives).toContain(`server booksai-progress:${app.environment?.PORT}`);
    expect(directives).toContain('listen 80');
    expect(services.nginx?.ports).toEqual(['8080:80']);
  });
});

describe('deploy/nginx.conf', () => {
  it('passes the WebSocket upgrade on, and keeps other requests on keep-alive', () => {
    expect(nginx).toMatch(/map \$http_upgrade \$connection_upgrade \{\s*default upgrade;\s*'' +'';\s*\}/);
    expect(directives).toContain('proxy_http_version 1.1');
    expect(directives).toContain('proxy_set_header Upgrade $http_upgrade');
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

  it('is quoted whole in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const start = nginx.indexOf('http {');
    expect(readme).toContain(nginx.slice(start).trim());
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
