/**
 * End-to-end helper: a real multi-node cluster of the demo chat app. One
 * `redis-server` (see ./redis-server) and N demo app *processes* (the built
 * `dist/apps/demo-chat/src/main.js`), each on its own free port with its own
 * node id, all sharing the Redis backend and one JWT secret.
 *
 * Every node runs in its own process group (spawned detached), so `kill9()`
 * really is `kill -9` of the whole node, and `stopAll()` (also called when
 * start-up fails, and on process exit) leaves nothing behind. Each node's
 * stdout and stderr go to a file in a temporary log directory; `logs()` and
 * `describeLogs()` read them back for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { httpCall, type HttpOptions, type HttpResponse } from './app';
import { freePort, startRedisServer, type RedisServerHandle } from './redis-server';

/** The repository root (test/support/../..). */
export const REPO_ROOT = resolve(__dirname, '..', '..');
/** The built demo app. */
export const DEMO_MAIN = join(REPO_ROOT, 'dist', 'apps', 'demo-chat', 'src', 'main.js');

export interface ClusterOptions {
  /** Number of app processes. Default 3. */
  nodes?: number;
  /** Start Redis with the append-only file (survives a restart). Default false. */
  appendonly?: boolean;
  /** Extra environment for every node (overrides the cluster defaults). */
  env?: Record<string, string>;
  /** Bound on one node's start-up (process spawn until health 200). Default 30 s. */
  startTimeoutMs?: number;
}

export interface ClusterNode {
  index: number;
  nodeId: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>/ws` */
  wsUrl: string;
  /** The node's log file (stdout and stderr). */
  logFile: string;
  /** Whether the node's process is running. */
  readonly running: boolean;
  /** The process id (also the process group id) of the current process, if running. */
  readonly pid: number | undefined;
  /** An HTTP request against this node. */
  http(method: string, path: string, options?: HttpOptions): Promise<HttpResponse>;
  /** SIGKILL the node's whole process group and wait for the exit. Idempotent. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown), SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
  /** Stop if running, then start again with the same port and node id; resolves once healthy. */
  restart(): Promise<void>;
}

export interface Cluster {
  nodes: ClusterNode[];
  redis: RedisServerHandle;
  /** The JWT secret every node shares. */
  secret: string;
  /** Temporary directory holding one log file per node. */
  logDir: string;
  /** `POST /api/auth/login` on `nodes[node]` (default: the first running node). */
  login(username: string, node?: number): Promise<string>;
  /** The last `maxChars` characters of every node's log. */
  describeLogs(maxChars?: number): string;
  /** Kill every process group started by this cluster and stop Redis. Idempotent. */
  stopAll(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Process groups still running: killed if the test process exits without stopping them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  };
  process.once('exit', killAll);
  // The nodes are detached (own process groups), so a Ctrl-C does not reach them: kill them
  // here, then let the signal do what it would have done without this listener.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Run a command, rejecting with its output when it fails or overruns. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer): void => {
      out = (out + d.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

let built: Promise<void> | undefined;
/** `npm run build --silent`, once per test process (the Nest build is incremental). */
export function buildDemoOnce(): Promise<void> {
  built ??= run('npm', ['run', 'build', '--silent'], 180_000).then(() => {
    if (!existsSync(DEMO_MAIN)) throw new Error(`the build did not produce ${DEMO_MAIN}`);
  });
  return built;
}

/** The environment of a node: the test process's, minus any inherited streaming settings. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('FORGE_STREAMING_') || k === 'JWT_SECRET') continue;
    env[k] = v;
  }
  return env;
}

function tail(file: string, maxChars: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > maxChars ? `...${text.slice(-maxChars)}` : text;
  } catch {
    return '<no log>';
  }
}

class NodeProcess implements ClusterNode {
  readonly baseUrl: string;
  readonly wsUrl: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | null = null;

  constructor(
    readonly index: number,
    readonly nodeId: string,
    readonly port: number,
    readonly logFile: string,
    private readonly env: Record<string, string>,
    private readonly startTimeoutMs: number,
  ) {
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/ws`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  http(method: string, path: string, options?: HttpOptions): Promise<HttpResponse> {
    return httpCall(this.baseUrl, method, path, options);
  }

  async start(): Promise<void> {
    installExitHook();
    const fd = openSync(this.logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [DEMO_MAIN], {
        cwd: REPO_ROOT,
        env: this.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    const pgid = proc.pid;
    if (pgid !== undefined) liveGroups.add(pgid);
    this.exitInfo = null;
    this.exited = new Promise<void>((done) => {
      const finish = (info: string): void => {
        if (pgid !== undefined) {
          // Whatever the node left in its group goes with it.
          killGroup(pgid, 'SIGKILL');
          liveGroups.delete(pgid);
        }
        this.exitInfo = info;
        if (this.child === proc) this.child = null;
        done();
      };
      proc.once('exit', (code, signal) => finish(`code ${code}, signal ${signal}`));
      proc.once('error', (err) => finish(`spawn error: ${err.message}`));
    });
    this.child = proc;
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      const exitInfo = this.exitState();
      if (exitInfo !== null) {
        throw new Error(
          `node ${this.nodeId} exited during start-up (${exitInfo}):\n${tail(this.logFile, 4000)}`,
        );
      }
      const res = await this.http('GET', '/_/health/streaming', { timeoutMs: 1000 }).catch(() => null);
      if (res?.status === 200) return;
      if (Date.now() > deadline) {
        await this.kill9();
        throw new Error(
          `node ${this.nodeId} was not healthy within ${this.startTimeoutMs} ms` +
            ` (last: ${res ? `${res.status} ${res.text}` : 'no answer'}):\n${tail(this.logFile, 4000)}`,
        );
      }
      await sleep(100);
    }
  }

  /** How the last process ended (null while it runs). */
  private exitState(): string | null {
    return this.exitInfo;
  }

  async kill9(): Promise<void> {
    const proc = this.child;
    if (!proc?.pid) return;
    killGroup(proc.pid, 'SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    const proc = this.child;
    if (!proc?.pid) return;
    killGroup(proc.pid, 'SIGTERM');
    const pid = proc.pid;
    const killer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/**
 * Build the demo (once per test process), start Redis, then `nodes` demo app
 * processes with short cluster timers (heartbeat 1 s, node_timeout 3 s,
 * presence_cleanup 1 s, typing_timeout 2 s), high rate limits and in-memory
 * local history; resolves once every node answers `GET /_/health/streaming` 200.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.nodes ?? 3;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  await buildDemoOnce();
  const logDir = mkdtempSync(join(tmpdir(), 'nest-streaming-cluster-'));
  const secret = `cluster-secret-${randomUUID()}`;
  const tag = randomUUID().slice(0, 6);
  const redis = await startRedisServer({ appendonly: options.appendonly ?? false });
  const nodes: NodeProcess[] = [];
  let stopping: Promise<void> | undefined;

  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(nodes.map((n) => n.kill9()));
      await redis.dispose();
    })());

  const describeLogs = (maxChars = 3000): string =>
    nodes.map((n) => `----- ${n.nodeId} (${n.logFile}) -----\n${tail(n.logFile, maxChars)}`).join('\n');

  try {
    for (let i = 0; i < count; i++) {
      const nodeId = `node-${i + 1}-${tag}`;
      const port = await freePort();
      const env: Record<string, string> = {
        ...baseEnv(),
        PORT: String(port),
        HOST: '127.0.0.1',
        NO_COLOR: '1',
        JWT_SECRET: secret,
        FORGE_STREAMING_BACKEND: 'redis',
        FORGE_STREAMING_BACKEND_URLS: redis.url,
        FORGE_STREAMING_NODE_ID: nodeId,
        FORGE_STREAMING_HISTORY_STORE: 'memory',
        FORGE_STREAMING_HEARTBEAT_INTERVAL: '1',
        FORGE_STREAMING_NODE_TIMEOUT: '3',
        FORGE_STREAMING_PRESENCE_CLEANUP: '1',
        FORGE_STREAMING_TYPING_TIMEOUT: '2',
        FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '10000',
        FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '10000',
        ...options.env,
      };
      nodes.push(new NodeProcess(i, nodeId, port, join(logDir, `${nodeId}.log`), env, startTimeoutMs));
    }
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    const logs = describeLogs();
    await stopAll();
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`cluster start-up failed: ${message}\nlogs in ${logDir}:\n${logs}`);
  }

  return {
    nodes,
    redis,
    secret,
    logDir,
    describeLogs,
    stopAll,
    async login(username: string, node?: number): Promise<string> {
      const target = node !== undefined ? nodes[node] : nodes.find((n) => n.running);
      if (!target) throw new Error('no running node to log in on');
      const res = await target.http('POST', '/api/auth/login', { body: { username } });
      if (res.status !== 200 || typeof res.json?.token !== 'string') {
        throw new Error(`login of ${username} on ${target.nodeId} failed: ${res.status} ${res.text}`);
      }
      return res.json.token as string;
    },
  };
}

/** Remove a cluster's log directory (after a passing suite). */
export function removeLogs(cluster: Cluster): void {
  rmSync(cluster.logDir, { recursive: true, force: true });
}
