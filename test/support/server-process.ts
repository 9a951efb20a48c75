/**
 * End-to-end helper shared by ./redis-server and ./nats-server: run a server
 * binary as a child process on a loopback port and wait until it is ready;
 * stop it (SIGTERM, then SIGKILL), restart it, and kill whatever is still
 * running when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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

/** Absolute path of `name`: /usr/bin/<name>, else the first one on PATH. Throws `missing` when there is none. */
export function findBinary(name: string, missing: string): string {
  const candidates = [`/usr/bin/${name}`];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, name));
  const found = candidates.find(isExecutable);
  if (!found) throw new Error(missing);
  return found;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** `dir` when given (kept), else a fresh temporary directory that `remove()` deletes. */
export function workDir(prefix: string, dir?: string): { dir: string; remove: () => void } {
  if (dir !== undefined) return { dir, remove: () => undefined };
  const own = mkdtempSync(join(tmpdir(), prefix));
  return { dir: own, remove: () => rmSync(own, { recursive: true, force: true }) };
}

export interface ServerProcessOptions {
  /** Named in errors, e.g. `redis-server`. */
  name: string;
  binary: string;
  /** The arguments of each launch. */
  args: () => string[];
  cwd: string;
  port: number;
  /** One readiness probe: resolves true once the server answers. */
  probe: (port: number) => Promise<boolean>;
  /** What a ready server does, for the timeout error: `answer PING`. */
  readiness: string;
  startTimeoutMs: number;
}

/** One server process, which can be stopped and launched again. */
export interface ServerProcess {
  /** The running process, or null. */
  readonly child: ChildProcess | null;
  /** Spawn the process and wait until `probe` answers; throws (with its last output) when it exits or times out. */
  launch(): Promise<void>;
  /**
   * SIGTERM (and SIGCONT, so that a paused process handles it), SIGKILL after
   * 5 s; resolves once it exited. Idempotent.
   */
  stop(): Promise<void>;
  /** SIGKILL at once; resolves once it exited. */
  kill(): Promise<void>;
}

export function serverProcess(options: ServerProcessOptions): ServerProcess {
  const { name, port } = options;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    installExitHook();
    const proc = spawn(options.binary, options.args(), {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
    const deadline = Date.now() + options.startTimeoutMs;
    while (Date.now() < deadline) {
      if (state.exitInfo !== null) {
        throw new Error(`${name} on port ${port} exited during start-up (${state.exitInfo}): ${output}`);
      }
      if (await options.probe(port)) return;
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(
      `${name} on port ${port} did not ${options.readiness} within ${options.startTimeoutMs} ms: ${output}`,
    );
  };

  return {
    get child() {
      return child;
    },
    launch,
    async stop() {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGTERM');
      proc.kill('SIGCONT'); // a paused server handles the SIGTERM once it runs again
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
    async kill() {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
