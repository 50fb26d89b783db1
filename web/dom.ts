/**
 * Builds an element whose text is set as text, never parsed as HTML: whatever the server
 * sends (a message holding `<img onerror=...>`, say) shows as those characters.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return element;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element as T;
}

/**
 * Where the server's routes start, from the page's `<base href>` (BASE_PATH, set by the server):
 * `https://host/progress` for pages under `/progress/`. The pages' own links and fetches are
 * relative to it already; the client takes it as its `baseUrl`.
 */
export function serverBase(): string {
  return new URL('.', document.baseURI).href.replace(/\/$/, '');
}
