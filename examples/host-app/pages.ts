// The host app's two pages. Every value put into them goes through `escape`.

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  form { display: flex; gap: .5rem; align-items: end; flex-wrap: wrap; margin: 1rem 0; }
  label { display: flex; flex-direction: column; font-size: .9rem; }
  ul { list-style: none; padding: 0; }
  li { display: grid; grid-template-columns: 1fr 10rem 4rem 7rem; gap: .75rem; align-items: center; padding: .4rem 0; border-bottom: 1px solid #ddd; }
  progress { width: 100%; }
  .error { color: #b00020; }
  .muted { color: #666; }
`;

function layout(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${escape(title)}</title>
    <link rel="icon" href="data:," />
    <style>${STYLE}</style>
    ${head}
  </head>
  <body>
${body}
  </body>
</html>`;
}

export function loginPage(error?: string): string {
  return layout(
    'Sign in · Host app',
    `    <h1>Sign in</h1>
    <form method="post" action="/login">
      <label>User <input name="user" autocomplete="username" required /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit">Sign in</button>
    </form>
    <p class="error" id="login-error" role="alert">${escape(error ?? '')}</p>
    <p class="muted">Demo users: alice / alice-password (tenant acme), bob / bob-password (tenant globex).</p>`,
  );
}

/** The signed-in page: page.ts reads the progress server's address and how often to renew the token from its meta tags. */
export function appPage(options: { user: string; tenant: string; progressUrl: string; renewMs: number }): string {
  return layout(
    'My books · Host app',
    `    <header>
      <h1>My books</h1>
      <p>Signed in as <strong id="user">${escape(options.user)}</strong> (tenant ${escape(options.tenant)}).</p>
      <form method="post" action="/logout"><button type="submit">Log out</button></form>
    </header>
    <form id="start">
      <label>Title <input name="title" required maxlength="200" value="A book of my own" /></label>
      <label>Chapters <input name="chapters" type="number" min="1" max="50" value="3" /></label>
      <button type="submit">Start a book</button>
    </form>
    <p class="error" id="error" role="alert"></p>
    <p class="muted" id="connection" role="status" aria-live="polite">connecting</p>
    <ul id="books"></ul>
    <p class="muted" id="empty">No books yet.</p>
    <script type="module" src="/page.js"></script>`,
    `<meta name="progress-url" content="${escape(options.progressUrl)}" />
    <meta name="token-renew-ms" content="${Math.round(options.renewMs)}" />`,
  );
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
