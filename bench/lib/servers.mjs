// The servers under test, each in its own child process on 127.0.0.1, and a
// redis-server for the two-node scenario. Every child is killed if the
// orchestrator exits early.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { common } from './config.mjs';
import { nowUs } from './client.mjs';
import { memStatus, rssBytes } from './proc.mjs';

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const root = path.resolve(benchDir, '..');
export const resultsDir = path.join(benchDir, 'results');
export const logsDir = path.join(resultsDir, 'logs');
export const profilesDir = path.join(resultsDir, 'profiles');

export const JWT_SECRET = 'bench-secret-bench-secret-bench-secret';

export const SERVERS = {
  'ws-bare': {
    label: 'bare ws loop',
    script: 'bench/servers/ws-bare.mjs',
    env: {},
  },
  socketio: {
    label: 'NestJS + socket.io',
    script: 'bench/servers/nest-socketio.mjs',
    env: {},
  },
  ours: {
    label: 'nest-streaming demo',
    script: common.oursScript,
    // The demo as a user would run it for a benchmark: a fresh in-memory store, rate limits
    // raised out of the way. Scenarios add what they need (history size, write timeout, redis).
    env: {
      HOST: '127.0.0.1',
      JWT_SECRET,
      FORGE_STREAMING_HISTORY_STORE: 'memory',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000000',
      FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '1000000',
      FORGE_STREAMING_MAX_CONNECTIONS_PER_USER: '10',
    },
  },
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

/** Children still running; killed when the orchestrator exits (normally or on a signal). */
const live = new Set();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}
function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * Run one server's part of a scenario. A failure is logged and returned as
 * `{kind, label, ...extra, error}`, so the other servers still run.
 */
export async function attempt(kind, fn, extra = {}) {
  try {
    return await fn();
  } catch (err) {
    log(`${kind} FAILED: ${err.stack ?? err}`);
    return { kind, label: SERVERS[kind].label, ...extra, error: String(err.message ?? err) };
  }
}

/** Run `one(kind)` for each server of `cfg.servers` in turn: the `{config, results}` of a scenario. */
export async function runEach(cfg, one) {
  const results = [];
  for (const kind of cfg.servers) results.push(await attempt(kind, () => one(kind)));
  return { config: cfg, results };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, child, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`process exited early with code ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
}

/** GET a URL until it answers 200 (the demo's health check once its backend is connected). */
export async function waitHealthy(url, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status} ${await res.text()}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not healthy within ${timeoutMs} ms (${last})`);
}

export class ServerProc {
  /**
   * @param kind  'ws-bare' | 'socketio' | 'ours'
   * @param opts.profile  run under --cpu-prof
   * @param opts.env      extra environment (after the server's own)
   * @param opts.name     log file name (bench/results/logs/<name>.log)
   */
  constructor(kind, port, { profile = false, env = {}, name = kind } = {}) {
    const spec = SERVERS[kind];
    this.kind = kind;
    this.label = spec.label;
    this.port = port;
    fs.mkdirSync(logsDir, { recursive: true });
    this.logFile = path.join(logsDir, `${name}${profile ? '-profile' : ''}.log`);
    const out = fs.openSync(this.logFile, 'w');
    const nodeArgs = [
      '--expose-gc',
      '--import',
      pathToFileURL(path.join(benchDir, 'lib/server-preload.mjs')).href,
    ];
    // Extra V8/Node flags for the servers (experiments: BENCH_SERVER_NODE_ARGS='--trace-gc').
    if (process.env.BENCH_SERVER_NODE_ARGS)
      nodeArgs.push(...process.env.BENCH_SERVER_NODE_ARGS.split(/\s+/).filter(Boolean));
    if (profile) {
      this.profileDir = path.join(profilesDir, name);
      fs.rmSync(this.profileDir, { recursive: true, force: true });
      fs.mkdirSync(this.profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', this.profileDir, '--cpu-prof-interval', '250');
    }
    this.args = [...nodeArgs, spec.script];
    this.env = { ...spec.env, ...env };
    this.child = track(
      spawn(process.execPath, this.args, {
        cwd: root,
        env: { ...process.env, NODE_ENV: 'production', PORT: String(port), ...this.env },
        stdio: ['ignore', out, out, 'ipc'],
      }),
    );
    fs.closeSync(out);
    this.pid = this.child.pid;
    this.replies = new Map();
    this.nextReq = 1;
    this.child.on('message', (m) => {
      const r = this.replies.get(m.reqId);
      if (r) {
        this.replies.delete(m.reqId);
        r(m);
      }
    });
  }

  /** The command line, with the environment variables that differ from the orchestrator's. */
  get command() {
    const env = Object.entries(this.env)
      .filter(([k]) => k.startsWith('FORGE_STREAMING_'))
      .map(([k, v]) => `${k}=${v}`);
    return [...env, 'node', ...this.args].join(' ');
  }

  ask(op, timeoutMs = 15000) {
    const reqId = this.nextReq++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server did not answer ${op}`)), timeoutMs);
      this.replies.set(reqId, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.child.send({ op, reqId });
    });
  }

  /** Settle the heap (two GCs), then read RSS from /proc and the heap from the process. */
  async memory() {
    const a = await this.ask('mem');
    await sleep(700);
    return {
      rss: rssBytes(this.pid),
      heapUsed: a.mem.heapUsed,
      external: a.mem.external,
      arrayBuffers: a.mem.arrayBuffers,
      heapTotal: a.mem.heapTotal,
    };
  }

  /** VmRSS and VmHWM now, without a GC. */
  mem() {
    return memStatus(this.pid);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.exitHr = nowUs();
    this.child.send({ op: 'exit' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    await exited;
    clearTimeout(t);
  }
}

/** Start one server on a free port and wait until it listens. */
export async function startServer(kind, opts = {}) {
  const port = await freePort();
  const server = new ServerProc(kind, port, opts);
  try {
    await waitForPort(port, server.child);
  } catch (err) {
    await server.stop();
    throw new Error(`${kind}: ${err.message} (log: ${path.relative(root, server.logFile)})`);
  }
  return server;
}

/** A throw-away redis-server on a free loopback port: no persistence, its own temporary directory. */
export async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-redis-'));
  fs.mkdirSync(logsDir, { recursive: true });
  const logFile = path.join(logsDir, 'redis-server.log');
  const out = fs.openSync(logFile, 'w');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--dir', dir, '--daemonize', 'no', '--loglevel', 'warning');
  const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  track(child);
  const spawned = await new Promise((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  if (spawned)
    throw new Error(`redis-server could not be started (${spawned.message}): apt-get install redis-server`);
  await waitForPort(port, child, 15000);
  return {
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    command: `redis-server ${args.map((a) => a || "''").join(' ')}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
