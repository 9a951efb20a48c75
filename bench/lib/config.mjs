// Benchmark settings from BENCH_* environment variables (documented in bench/README.md).
// Each scenario reads its own variables with `num`; the settings shared by every
// scenario are in `common`.

/** A non-negative number from the environment, or `dflt` when unset or empty. */
export function num(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}

/** A comma-separated list from the environment. */
export function list(name, dflt) {
  return (process.env[name] ?? dflt)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const ALL_SERVERS = ['ws-bare', 'socketio', 'ours'];

export const common = {
  servers: list('BENCH_SERVERS', ALL_SERVERS.join(',')),
  clientProcs: Math.max(1, num('BENCH_CLIENT_PROCS', 2)),
  // Connection attempts in flight per client process. A storm of parallel upgrades raises the
  // server's malloc high-water mark, which RSS keeps and would charge to the idle connections.
  connectConcurrency: Math.max(1, num('BENCH_CONNECT_CONCURRENCY', 10)),
  warmConnections: num('BENCH_WARM_CONNECTIONS', 200),
  stallMs: num('BENCH_STALL_MS', 20000),
  build: process.env.BENCH_SKIP_BUILD !== '1',
  // BENCH_OURS_SCRIPT runs another build of the demo (e.g. a patched copy, for an A/B test).
  oursScript: process.env.BENCH_OURS_SCRIPT || 'dist/apps/demo-chat/src/main.js',
};

/** The command that reproduces this run: every BENCH_* variable that is set, then the npm script. */
export function commandLine() {
  const quote = (v) => (/^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const vars = Object.keys(process.env)
    .filter((k) => k.startsWith('BENCH_'))
    .sort()
    .map((k) => `${k}=${quote(process.env[k])}`);
  return [...vars, 'npm run bench'].join(' ');
}
