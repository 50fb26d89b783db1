import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MODULE_SCRIPTS, PROTOCOL_DOC, PYTHON_MODULE, embeddedDoc, embeddedModule, moduleRegion } from '../../clients/embed.js';
import * as scripts from '../../src/broker/scripts.js';
import { COMMIT } from '../../src/broker/scripts.js';

const doc = readFileSync(PROTOCOL_DOC, 'utf8');
const module = readFileSync(PYTHON_MODULE, 'utf8');

describe('docs/protocol.md and clients/python cannot drift from the server (npm run docs:embed)', () => {
  it('the Python module carries the server\'s commit and live-text scripts byte for byte', () => {
    expect(embeddedModule(module)).toBe(module);
    expect(MODULE_SCRIPTS).toEqual(['COMMIT', 'BEGIN_SECTION', 'APPEND_TEXT']);
    for (const name of MODULE_SCRIPTS) expect(module).toContain(`\n${name} = r"""${scripts[name]}"""\n`);
  });

  it('embedding puts back a script the module changed', () => {
    const drifted = module.replace("if ARGV[7] == 'SPUBLISH' then publish = 'SPUBLISH' end", "publish = 'PUBLISH'");
    expect(drifted).not.toBe(module);
    expect(embeddedModule(drifted)).toBe(module);
  });

  it('the doc prints the commit script as the server runs it, and quotes the module\'s code', () => {
    expect(embeddedDoc(doc, module)).toBe(doc);
    expect(doc).toContain(`<!-- embed: src/broker/scripts.ts COMMIT -->\n\`\`\`lua\n${COMMIT.replace(/^\n/, '')}\`\`\``);
    for (const name of ['keys', 'last saved', 'next state', 'publish', 'live text', 'http']) {
      expect(doc).toContain(`<!-- embed: clients/python/booksai_progress.py ${name} -->\n\`\`\`python\n${moduleRegion(module, name)}\`\`\``);
    }
  });

  it('every Lua block of the doc is one of the server\'s scripts', () => {
    const lua = [...doc.matchAll(/(.*)\n```lua\n/g)].map((m) => m[1]);
    expect(lua.length).toBeGreaterThan(0);
    for (const before of lua) expect(before).toMatch(/^<!-- embed: src\/broker\/scripts\.ts [A-Z_]+ -->$/);
  });
});
