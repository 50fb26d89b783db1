import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as scripts from '../src/broker/scripts.js';

/**
 * Keeps docs/protocol.md and clients/python/booksai_progress.py equal to their sources:
 * `npm run docs:embed` rewrites them, test/clients/embed.test.ts fails while they differ.
 * - a fenced block after `<!-- embed: src/broker/scripts.ts NAME -->` is that script of the server;
 * - one after `<!-- embed: clients/python/booksai_progress.py NAME -->` is the module's region
 *   between `# [docs/protocol.md: NAME]` and `# [end]`;
 * - the module's `COMMIT = r"""…"""`, `BEGIN_SECTION = …` and `APPEND_TEXT = …` are the server's scripts.
 */
export const PYTHON_MODULE = fileURLToPath(new URL('python/booksai_progress.py', import.meta.url));
export const PROTOCOL_DOC = fileURLToPath(new URL('../docs/protocol.md', import.meta.url));

const SCRIPTS: Record<string, string> = { ...scripts };

/** The server's scripts the Python module runs, each held as `NAME = r"""…"""`. */
export const MODULE_SCRIPTS = ['COMMIT', 'BEGIN_SECTION', 'APPEND_TEXT'] as const;

export function embeddedModule(module: string): string {
  return MODULE_SCRIPTS.reduce((text, name) => {
    const opening = `\n${name} = r"""`;
    const start = text.indexOf(opening);
    const end = start < 0 ? -1 : text.indexOf('"""', start + opening.length);
    if (end < 0) throw new Error(`booksai_progress.py has no ${name} = r"""…"""`);
    const script = SCRIPTS[name]!;
    if (script.includes('"""') || script.endsWith('\\')) throw new Error(`${name} cannot be a Python raw string`);
    return `${text.slice(0, start + opening.length)}${script}${text.slice(end)}`;
  }, module);
}

export function moduleRegion(module: string, name: string): string {
  const marker = `# [docs/protocol.md: ${name}]\n`;
  const start = module.indexOf(marker);
  if (start < 0) throw new Error(`booksai_progress.py has no region ${name}`);
  const end = module.indexOf('# [end]', start);
  return module.slice(start + marker.length, end).replace(/\n+$/, '\n');
}

export function embeddedDoc(doc: string, module: string): string {
  return doc.replace(/(<!-- embed: (\S+) (.+?) -->\n```(\w+)\n)[\s\S]*?(```)/g, (_all, head: string, file: string, name: string, _lang, close: string) => {
    if (file === 'src/broker/scripts.ts') {
      const script = SCRIPTS[name];
      if (script === undefined) throw new Error(`no script ${name} in src/broker/scripts.ts`);
      return `${head}${script.replace(/^\n/, '')}${close}`;
    }
    if (file === 'clients/python/booksai_progress.py') return `${head}${moduleRegion(module, name)}${close}`;
    throw new Error(`cannot embed from ${file}`);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const module = embeddedModule(readFileSync(PYTHON_MODULE, 'utf8'));
  writeFileSync(PYTHON_MODULE, module);
  writeFileSync(PROTOCOL_DOC, embeddedDoc(readFileSync(PROTOCOL_DOC, 'utf8'), module));
}
