// A tiny React app for test/web/react.test.ts, bundled by esbuild: mounts hooks on command
// (window.app) and records every render with the animation frame it happened in.
import { StrictMode, Suspense, createElement as h } from 'react';
import type { ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import type { Root } from 'react-dom/client';
import { useBookProgress, useBookText, useBooks } from '../../../web/sdk/react.js';

interface Render {
  frame: number;
  versions: Record<string, number>;
  connection: string;
  transport: string;
  text?: string;
}

let frame = 0;
const tick = () => {
  frame++;
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);

const renders: Record<string, Render[]> = {};
const roots = new Map<string, Root>();

function Progress({ name, id, suspense }: { name: string; id: string; suspense: boolean }) {
  const r = useBookProgress(id, { suspense });
  renders[name]?.push({ frame, versions: { [id]: r.progress?.version ?? 0 }, connection: r.connection, transport: r.transport });
  return h('p', { className: name }, `${r.progress?.version ?? 0}`);
}

function Books({ name, ids }: { name: string; ids: string[] }) {
  const r = useBooks(ids);
  renders[name]?.push({ frame, versions: Object.fromEntries([...r.books].map(([id, s]) => [id, s.version])), connection: r.connection, transport: r.transport });
  return h('p', { className: name }, [...r.books.values()].map((s) => s.version).join(','));
}

function Text({ name, id, chapter }: { name: string; id: string; chapter: number }) {
  const r = useBookText(id, chapter);
  renders[name]?.push({ frame, versions: {}, connection: r.connection, transport: 'sse', text: r.text });
  return h('pre', { className: name }, r.text);
}

const app = {
  renders,
  frame: () => frame,
  mount(name: string, kind: 'progress' | 'books' | 'text', options: { id?: string; ids?: string[]; chapter?: number; strict?: boolean; suspense?: boolean }) {
    renders[name] = [];
    const div = document.createElement('div');
    document.body.append(div);
    let element: ReactElement =
      kind === 'progress'
        ? h(Progress, { name, id: options.id ?? '', suspense: options.suspense ?? false })
        : kind === 'books'
          ? h(Books, { name, ids: options.ids ?? [] })
          : h(Text, { name, id: options.id ?? '', chapter: options.chapter ?? 1 });
    if (options.suspense) element = h(Suspense, { fallback: h('p', { className: `${name}-fallback` }, 'loading') }, element);
    if (options.strict) element = h(StrictMode, null, element);
    const root = createRoot(div);
    root.render(element);
    roots.set(name, root);
  },
  unmount(name: string) {
    roots.get(name)?.unmount();
    roots.delete(name);
  },
};
(window as unknown as { app: typeof app }).app = app;
