import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The keys of a `const <name> = z.object({ … });` in src/config.ts: the variables the server (or the CLI) reads. */
function schemaKeys(name: string): string[] {
  const source = readFileSync('src/config.ts', 'utf8');
  const start = source.indexOf(`const ${name} = z.object({`);
  expect(start, `${name} in src/config.ts`).toBeGreaterThanOrEqual(0);
  const body = source.slice(start, source.indexOf('\n});', start));
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1] as string);
}

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const next = markdown.indexOf('\n## ', start + heading.length + 2);
  return markdown.slice(start, next === -1 ? undefined : next);
}

/** First-column `NAME`s of the rows of the markdown tables in `text`. */
function tableVariables(text: string): string[] {
  return [...text.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1] as string);
}

const readme = readFileSync('README.md', 'utf8');
const configuration = readFileSync('docs/configuration.md', 'utf8');
const serverVariables = schemaKeys('EnvSchema');

describe('the configuration the README and docs/configuration.md list', () => {
  it('is every variable src/config.ts reads, each once, in the README table', () => {
    const listed = tableVariables(section(readme, '## Configuration'));
    expect([...listed].sort()).toEqual([...serverVariables].sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('is every variable, each with its own heading, in docs/configuration.md', () => {
    const explained = [...configuration.matchAll(/^### `([A-Z][A-Z0-9_]*)`$/gm)].map((m) => m[1] as string);
    expect([...explained].sort()).toEqual([...serverVariables].sort());
    expect(new Set(explained).size).toBe(explained.length);
    const client = schemaKeys('ClientEnvSchema').filter((name) => !serverVariables.includes(name));
    expect(client.length).toBeGreaterThan(0);
    expect(tableVariables(section(configuration, "## The command line's variables")).sort()).toEqual(client.sort());
  });

  it('keeps README table cells to values: no cell is a paragraph', () => {
    for (const row of readme.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---'))) {
      for (const cell of row.slice(1, -1).split(' | ')) expect(cell.trim().length, row).toBeLessThanOrEqual(90);
    }
  });
});

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function anchors(markdown: string): Set<string> {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...prose.matchAll(/^#{1,6} (.+)$/gm)].map((m) => (m[1] as string).trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')));
}

const pages = ['README.md', 'examples/host-app/README.md', ...readdirSync('docs').filter((name) => name.endsWith('.md')).map((name) => join('docs', name))];

describe('the links of the README and docs/', () => {
  it('lead to files that exist, and to headings those files have', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(page, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue; // http:, https:, mailto:
        const [path, anchor] = (target as string).split('#') as [string, string | undefined];
        const file = path === '' ? page : normalize(join(dirname(page), path));
        if (!existsSync(file)) broken.push(`${page}: ${target} (no ${file})`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${page}: ${target} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('include every page of docs/ in its table of contents, docs/README.md, and the README links to it', () => {
    const index = readFileSync('docs/README.md', 'utf8');
    for (const name of readdirSync('docs').filter((n) => n !== 'README.md' && (n.endsWith('.md') || n.endsWith('.json')))) expect(index, name).toContain(`](${name})`);
    expect(readme).toContain('](docs/README.md)');
  });

  it('keep the quick start the two commands .ci/run relies on, on the first screen with a publish snippet', () => {
    const firstScreen = readme.split('\n').slice(0, 40).join('\n');
    expect(firstScreen).toContain('npm ci && npm start');
    expect(firstScreen).toMatch(/^npm test\b/m);
    expect(firstScreen).toContain('curl -X POST http://localhost:3000/api/ai/progress/');
    expect(readFileSync('.ci/run', 'utf8')).toMatch(/\bnpm test\b/);
  });
});
