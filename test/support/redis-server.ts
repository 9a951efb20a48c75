/**
 * End-to-end helper: run a real `redis-server` as a child process on a free
 * loopback port, with its own temporary directory.
 *
 * There is no skipping: when `redis-server` is not installed the helper throws,
 * so a suite that needs Redis fails loudly instead of silently passing.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findBinary, freePort, serverProcess, sleep, workDir } from './server-process';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export { freePort };

export interface RedisServerOptions {
  /** Persist with the append-only file (`--appendonly yes`). Default false. */
  appendonly?: boolean;
  /** Working directory (AOF / nodes.conf). Default: a fresh temporary directory, removed by `dispose()`. */
  dir?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /** Start as a Redis Cluster node (`--cluster-enabled yes`). Default false. */
  cluster?: boolean;
  /** With `cluster`: the cluster bus port. Default: the port + 10000. */
  clusterPort?: number;
  /** With `cluster`: `cluster-node-timeout` in ms. Default 2000. */
  clusterNodeTimeoutMs?: number;
  /** With `appendonly`: `appendfsync`. Default Redis's (`everysec`). */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** More `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  extraArgs?: string[];
  /** How long to wait for PING to answer. Default 10 s. */
  startTimeoutMs?: number;
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The server's working directory. */
  dir: string;
  /** Whether the process is currently running. */
  readonly running: boolean;
  /** The process id while running. */
  readonly pid: number | undefined;
  /** SIGKILL, and wait for the exit (a crash: no AOF flush). */
  kill(): Promise<void>;
  /** SIGSTOP: the process stays, silent (a hung server). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Stop the server gracefully (SIGTERM: the AOF is flushed); SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
  /** Stop (if running) and start again on the same port with the same directory. */
  restart(): Promise<void>;
  /** Stop, and remove the directory if the helper created it. */
  dispose(): Promise<void>;
}

export const REDIS_SERVER_MISSING =
  'redis-server not found: install it with "apt-get install -y redis-server"';

/** Absolute path of `redis-server`: /usr/bin/redis-server, else the first one on PATH. Throws when missing. */
export function findRedisServer(): string {
  return findBinary('redis-server', REDIS_SERVER_MISSING);
}

/** One PING over a raw socket: resolves true on `+PONG`. */
function pingOnce(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/** Start `redis-server` and wait until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const binary = findRedisServer();
  const { dir, remove } = workDir('nest-streaming-redis-', options.dir);
  const port = options.port ?? (await freePort());

  const args = (): string[] => {
    const a = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      options.appendonly ? 'yes' : 'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ];
    if (options.appendfsync) a.push('--appendfsync', options.appendfsync);
    if (options.cluster) {
      a.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'));
      a.push('--cluster-node-timeout', String(options.clusterNodeTimeoutMs ?? 2000));
      if (options.clusterPort !== undefined) a.push('--cluster-port', String(options.clusterPort));
    }
    return [...a, ...(options.extraArgs ?? [])];
  };

  const server = serverProcess({
    name: 'redis-server',
    binary,
    args,
    cwd: dir,
    port,
    probe: (p) => pingOnce(p),
    readiness: 'answer PING',
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
  });
  await server.launch();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return server.child !== null;
    },
    get pid() {
      return server.child?.pid;
    },
    kill: () => server.kill(),
    pause: () => void server.child?.kill('SIGSTOP'),
    resume: () => void server.child?.kill('SIGCONT'),
    stop: () => server.stop(),
    async restart() {
      await server.stop();
      await server.launch();
    },
    async dispose() {
      await server.stop();
      remove();
    },
  };
}

export interface RedisClusterHandle {
  /** One `redis://127.0.0.1:<port>` per node (startup nodes). */
  urls: string[];
  nodes: RedisServerHandle[];
  /** Stop every node and remove their directories. */
  dispose(): Promise<void>;
}

/**
 * Start a Redis Cluster of `size` masters (no replicas) on loopback: the
 * 16384 slots are split evenly, the nodes MEET, and the helper waits until
 * every node reports `cluster_state:ok` and knows every other node.
 */
export async function startRedisCluster(size = 3, timeoutMs = 20_000): Promise<RedisClusterHandle> {
  const nodes = await Promise.all(Array.from({ length: size }, () => startRedisServer({ cluster: true })));
  const clients = nodes.map((n) => new Redis({ port: n.port, host: '127.0.0.1', lazyConnect: false }));
  const dispose = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.dispose()));
  };
  try {
    const per = Math.ceil(16384 / size);
    await Promise.all(
      clients.map((c, i) =>
        c.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1))),
      ),
    );
    for (let i = 1; i < size; i++)
      await clients[0].call('CLUSTER', 'MEET', '127.0.0.1', String(nodes[i].port));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const infos = (await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO')))) as string[];
      const ok = infos.every(
        (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${size}`),
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`Redis Cluster did not converge within ${timeoutMs} ms`);
      await sleep(100);
    }
  } catch (err) {
    await dispose();
    throw err;
  } finally {
    clients.forEach((c) => c.disconnect());
  }
  return { urls: nodes.map((n) => n.url), nodes, dispose };
}
