/**
 * End-to-end helper for the client tests: the built demo app
 * (`dist/apps/demo-chat/src/main.js`) as a separate Node process on a fixed
 * loopback port, so that it can be SIGKILLed (or SIGSTOPped) and started
 * again on the same port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { eventually } from '@nest-streaming/streaming/testing';
import { freePort } from './server-process';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const DEMO_MAIN = join(REPO_ROOT, 'dist', 'apps', 'demo-chat', 'src', 'main.js');

/** `npm run build` (nest build demo-chat); throws with its output when it fails. */
export function buildDemoApp(): void {
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  if (!existsSync(DEMO_MAIN)) throw new Error(`${DEMO_MAIN} missing after npm run build`);
}

/** A TCP port that was free a moment ago on 127.0.0.1 (shared with the Redis and NATS helpers). */
export { freePort };

/** Servers still running: killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHook = false;

export interface DemoProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  /** `ws://127.0.0.1:<port>/ws` */
  readonly wsUrl: string;
  readonly running: boolean;
  /** stdout + stderr of every run so far (for failure messages). */
  readonly output: string;
  /** Start (again) on the same port; resolves once the health endpoint answers 200. */
  start(): Promise<void>;
  /** Send a signal and, for SIGKILL/SIGTERM, wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** `POST /api/auth/login` */
  login(username: string): Promise<string>;
}

/**
 * A demo app process. `env` is added to a clean environment (inherited
 * FORGE_STREAMING_* and JWT_SECRET are dropped); PORT and HOST are set here.
 */
export async function demoProcess(env: Record<string, string>): Promise<DemoProcess> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;
  let output = '';
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('FORGE_STREAMING_') && k !== 'JWT_SECRET') childEnv[k] = v;
  }
  Object.assign(childEnv, env, { PORT: String(port), HOST: '127.0.0.1' });

  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const p of live) p.kill('SIGKILL');
    });
  }

  const handle: DemoProcess = {
    port,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    get running() {
      return proc !== null && proc.exitCode === null && proc.signalCode === null;
    },
    get output() {
      return output;
    },
    async start() {
      if (handle.running) throw new Error('already running');
      const child = spawn(process.execPath, [DEMO_MAIN], {
        cwd: REPO_ROOT,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc = child;
      live.add(child);
      child.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.once('exit', () => live.delete(child));
      const deadline = Date.now() + 20000;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `demo app exited (${child.exitCode ?? child.signalCode}) during start-up:\n${output}`,
          );
        }
        try {
          const res = await fetch(`${baseUrl}/_/health/streaming`, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`demo app not healthy within 20 s:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const child = proc;
      if (!child || !handle.running) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
    },
    async login(username: string) {
      const res = await fetch(`${baseUrl}/api/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username }),
      });
      const body = (await res.json()) as { token?: string };
      if (res.status !== 200 || typeof body.token !== 'string') {
        throw new Error(`login of ${username} failed: ${res.status} ${JSON.stringify(body)}`);
      }
      return body.token;
    },
  };
  return handle;
}

/**
 * Poll `fn` until it stops throwing (an `expect` inside), or rethrow its last failure at the deadline:
 * `eventually` of `@nest-streaming/streaming/testing`, with the client tests' defaults (5 s, every 20 ms).
 */
export function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, everyMs = 20): Promise<T> {
  return eventually(fn, timeoutMs, everyMs);
}

/** A promise with its resolve function: a gate a test opens when it wants. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
