/**
 * End-to-end helper: run a real `nats-server` as a child process on a free
 * loopback port, with JetStream storing into its own temporary directory.
 *
 * There is no skipping: when `nats-server` is not installed the helper throws,
 * so a suite that needs NATS fails loudly instead of silently passing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants as fsConstants,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface NatsServerOptions {
  /** Enable JetStream (`-js -sd <dir>`). Default true. */
  jetstream?: boolean;
  /** JetStream store directory. Default: a fresh temporary directory, removed by `dispose()`. */
  dir?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /**
   * Password users (written to a config file). The first one is also the
   * `no_auth_user`, so that connections without credentials still work while
   * wrong credentials are refused.
   */
  users?: { user: string; password: string }[];
  /** More `nats-server` arguments. */
  extraArgs?: string[];
  /** How long to wait for the server to accept connections. Default 10 s. */
  startTimeoutMs?: number;
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The JetStream store directory. */
  dir: string;
  /** Whether the process is currently running. */
  readonly running: boolean;
  /** Freeze the process (SIGSTOP) and wait until it is stopped: connections stay open but nothing answers. */
  pause(): Promise<void>;
  /** Unfreeze it (SIGCONT). */
  resume(): void;
  /** Stop the server (SIGTERM, also when paused; SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Kill the server at once (SIGKILL): no graceful shutdown, pending requests die with it. */
  crash(): Promise<void>;
  /** Stop (if running) and start again on the same port with the same store. */
  restart(): Promise<void>;
  /** Stop, and remove the directory if the helper created it. */
  dispose(): Promise<void>;
}

export const NATS_SERVER_MISSING = 'nats-server not found: install it with "apt-get install -y nats-server"';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Servers still running: killed if the test process exits without stopping them (e.g. a crash). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const proc of live) proc.kill('SIGKILL');
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `nats-server`: /usr/bin/nats-server, else the first one on PATH. Throws when missing. */
export function findNatsServer(): string {
  const candidates = ['/usr/bin/nats-server'];
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir) candidates.push(join(dir, 'nats-server'));
  const found = candidates.find(isExecutable);
  if (!found) throw new Error(NATS_SERVER_MISSING);
  return found;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (shared with the Redis helper). */
import { freePort } from './redis-server';
export { freePort };

/**
 * One handshake over a raw socket: the server's INFO (with `"jetstream":true`
 * when required), then CONNECT + PING answered by PONG.
 */
function handshakeOnce(port: number, jetstream: boolean, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let sentConnect = false;
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      if (!sentConnect) {
        const end = buf.indexOf('\r\n');
        if (end < 0) return;
        const line = buf.slice(0, end);
        buf = buf.slice(end + 2);
        if (!line.startsWith('INFO ')) return done(false);
        if (jetstream && !/"jetstream"\s*:\s*true/.test(line)) return done(false);
        sentConnect = true;
        socket.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
      }
      if (buf.includes('PONG\r\n')) done(true);
      else if (buf.includes('-ERR')) done(false);
    });
    socket.on('error', () => done(false));
  });
}

/** Start `nats-server` and wait until it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = findNatsServer();
  const jetstream = options.jetstream ?? true;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'nest-streaming-nats-'));
  const port = options.port ?? (await freePort());
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  let configFile: string | undefined;
  if (options.users && options.users.length > 0) {
    configFile = join(dir, 'nats-server.conf');
    const users = options.users
      .map((u) => `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)} }`)
      .join('\n');
    writeFileSync(
      configFile,
      `authorization {\n  users: [\n${users}\n  ]\n}\nno_auth_user: ${JSON.stringify(options.users[0].user)}\n`,
    );
  }

  const args = (): string[] => {
    const a: string[] = [];
    if (configFile) a.push('-c', configFile);
    a.push('-a', '127.0.0.1', '-p', String(port));
    if (jetstream) a.push('-js', '-sd', join(dir, 'jetstream'));
    return [...a, ...(options.extraArgs ?? [])];
  };

  const launch = async (): Promise<void> => {
    installExitHook();
    const proc = spawn(binary, args(), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const state: { exitInfo: string | null } = { exitInfo: null };
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        state.exitInfo = `code ${code}, signal ${signal}`;
        if (child === proc) child = null;
        resolve();
      });
      proc.once('error', (err) => {
        live.delete(proc);
        state.exitInfo = `spawn error: ${err.message}`;
        if (child === proc) child = null;
        resolve();
      });
    });
    child = proc;
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (state.exitInfo !== null) {
        throw new Error(`nats-server on port ${port} exited during start-up (${state.exitInfo}): ${output}`);
      }
      if (await handshakeOnce(port, jetstream)) return;
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(
      `nats-server on port ${port} did not accept connections within ${startTimeoutMs} ms: ${output}`,
    );
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    proc.kill('SIGCONT'); // a paused server handles the SIGTERM once it runs again
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };

  await launch();

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return child !== null;
    },
    async pause() {
      const proc = child;
      if (!proc?.pid) return;
      proc.kill('SIGSTOP');
      // Signals are asynchronous: wait until the kernel reports the process stopped (Linux), or a moment.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline) {
        let state = '';
        try {
          state = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
        } catch {
          await sleep(50);
          return;
        }
        if (state === 'T' || state === 't') {
          await sleep(20); // the other threads of the group stop along
          return;
        }
        await sleep(5);
      }
    },
    resume() {
      child?.kill('SIGCONT');
    },
    stop,
    async crash() {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await stop();
      await launch();
    },
    async dispose() {
      await stop();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
