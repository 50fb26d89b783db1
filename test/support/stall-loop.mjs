// Preloaded into a server process (NODE_OPTIONS=--import) by tests of overload: SIGUSR2 starts
// stalling its event loop (busy for STALL_MS, free for FREE_MS, again and again: a process whose
// CPU cannot keep up, still answering in the gaps), SIGWINCH stops it. Nothing in src/ knows.
const STALL_MS = 300;
const FREE_MS = 100;
let timer = null;

function stall() {
  const until = performance.now() + STALL_MS;
  while (performance.now() < until) {
    // burn CPU: the loop serves nothing meanwhile
  }
  timer = setTimeout(stall, FREE_MS);
}

process.on('SIGUSR2', () => {
  if (timer === null) timer = setTimeout(stall, 0);
});
process.on('SIGWINCH', () => {
  clearTimeout(timer);
  timer = null;
});
