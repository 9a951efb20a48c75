/**
 * End-to-end helper: a real Redis Cluster with replicas on loopback, for
 * failover tests. Each node is a `redis-server` of ./redis-server
 * (`startRedisServer`) with its own temporary directory, cluster mode, the
 * append-only file with `appendfsync always` and a short
 * `cluster-node-timeout`, so that a killed master's replica is promoted
 * within a few seconds. `redis-cli --cluster create` assigns the slots and
 * the replicas; the helper waits until every node reports `cluster_state:ok`
 * and every master has its replicas online.
 *
 * There is no skipping: without `redis-server` / `redis-cli` the helper
 * throws, naming the package to install.
 *
 * (./redis-server's `startRedisCluster` is the lighter variant: masters only,
 * no persistence, no failover.)
 */
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { REDIS_SERVER_MISSING, startRedisServer, type RedisServerHandle } from './redis-server';
import { findBinary, freePort, sleep } from './server-process';

export interface ReplicatedClusterOptions {
  /** Masters (each owns a third of the slots for 3). Default 3. */
  masters?: number;
  /** Replicas per master. Default 1. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout` (ms): how long before a silent node counts as failing. Default 1000. */
  nodeTimeoutMs?: number;
  /** `appendfsync`. Default `always`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Bound on creating the cluster and on each wait for it to agree. Default 30 s. */
  timeoutMs?: number;
}

/** One node of the cluster. */
/** A node of the cluster: a `redis-server` of ./redis-server (`kill`, `pause`, `resume`, `restart`). */
export type ClusterNodeHandle = RedisServerHandle;

/** A shard: the master owning some slots and its replicas, as the cluster sees it now. */
export interface Shard {
  master: ClusterNodeHandle;
  replicas: ClusterNodeHandle[];
  /** `[first, last]` slot ranges. */
  slots: Array<[number, number]>;
}

export interface ReplicatedClusterHandle {
  nodes: ClusterNodeHandle[];
  /** Every node's URL (startup nodes for a client). */
  urls: string[];
  /** The hash slot of a key or shard channel. */
  slotOf(key: string): Promise<number>;
  /** The live shards (masters not marked failed, with their replicas). */
  shards(): Promise<Shard[]>;
  /** The shard owning a key's (or shard channel's) slot. */
  shardOf(key: string): Promise<Shard>;
  /** Run one command on one node (a fresh connection; replies as ioredis gives them). */
  command(port: number, ...args: Array<string | number>): Promise<unknown>;
  /**
   * Wait until every running node reports `cluster_state:ok`, `key`'s slot is
   * owned by a running master other than `notPort`, and (`replicasOnline`)
   * every master has `replicasPerMaster` replicas online.
   */
  waitHealthy(options?: {
    key?: string;
    notPort?: number;
    replicasOnline?: boolean;
    timeoutMs?: number;
  }): Promise<void>;
  /** Kill every node and remove their directories. Idempotent. */
  dispose(): Promise<void>;
}

export const REDIS_CLI_MISSING = 'redis-cli not found: install it with "apt-get install -y redis-server"';

function run(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** One command on a fresh connection (no retries: a dead node fails at once). */
async function commandOn(port: number, args: Array<string | number>): Promise<unknown> {
  const c = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await c.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    c.disconnect();
  }
}

/** One `CLUSTER NODES` line. */
interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  masterId: string;
  slots: Array<[number, number]>;
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, masterId, , , , , ...slots] = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(addr)?.[1] ?? 0);
      return {
        id,
        port,
        master: flags.split(',').includes('master'),
        failed: /(^|,)(fail|fail\?|handshake|noaddr)(,|$)/.test(flags),
        masterId,
        slots: slots
          .filter((s) => /^\d/.test(s))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a, b ?? a] as [number, number];
          }),
      };
    });
}

/**
 * Start `masters × (1 + replicasPerMaster)` cluster nodes on free loopback
 * ports and join them with `redis-cli --cluster create`.
 */
export async function startReplicatedRedisCluster(
  options: ReplicatedClusterOptions = {},
): Promise<ReplicatedClusterHandle> {
  const cli = findBinary('redis-cli', REDIS_CLI_MISSING);
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const count = masters * (1 + replicasPerMaster);

  const nodes: ClusterNodeHandle[] = [];
  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> =>
    (disposed ??= (async () => {
      for (const n of nodes) n.resume();
      await Promise.all(nodes.map((n) => n.dispose()));
    })());

  try {
    // The cluster bus port is the client port + 10000 unless set: both are picked free.
    const all = await uniquePorts(2 * count);
    const ports = all.slice(0, count);
    const started = await Promise.allSettled(
      ports.map((port, i) =>
        startRedisServer({
          port,
          cluster: true,
          clusterPort: all[count + i],
          clusterNodeTimeoutMs: options.nodeTimeoutMs ?? 1000,
          appendonly: true,
          appendfsync: options.appendfsync ?? 'always',
        }),
      ),
    );
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    await run(
      cli,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      timeoutMs,
    );
  } catch (err) {
    await dispose();
    throw err;
  }

  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const running = (): ClusterNodeHandle[] => nodes.filter((n) => n.running);
  const command = (port: number, ...args: Array<string | number>): Promise<unknown> => commandOn(port, args);

  /** The cluster as the first running node that answers sees it. */
  const view = async (): Promise<NodeLine[]> => {
    let last: unknown;
    for (const n of running()) {
      try {
        return parseClusterNodes(String(await command(n.port, 'CLUSTER', 'NODES')));
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no cluster node answers CLUSTER NODES: ${String(last)}`);
  };

  const shards = async (): Promise<Shard[]> => {
    const lines = await view();
    return lines
      .filter((l) => l.master && !l.failed && l.slots.length > 0)
      .map((m) => ({
        master: byPort.get(m.port)!,
        replicas: lines
          .filter((l) => !l.master && l.masterId === m.id)
          .map((l) => byPort.get(l.port)!)
          .filter(Boolean),
        slots: m.slots,
      }));
  };

  const slotOf = async (key: string): Promise<number> => {
    for (const n of running()) {
      try {
        return Number(await command(n.port, 'CLUSTER', 'KEYSLOT', key));
      } catch {
        // next node
      }
    }
    throw new Error('no cluster node answers CLUSTER KEYSLOT');
  };

  const shardOf = async (key: string): Promise<Shard> => {
    const slot = await slotOf(key);
    const shard = (await shards()).find((s) => s.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!shard) throw new Error(`no live master owns slot ${slot} (of ${key})`);
    return shard;
  };

  const onlineReplicas = async (port: number): Promise<number> => {
    const info = String(await command(port, 'INFO', 'replication'));
    return (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
  };

  const waitHealthy: ReplicatedClusterHandle['waitHealthy'] = async (o = {}) => {
    const deadline = Date.now() + (o.timeoutMs ?? timeoutMs);
    let problem = 'not checked yet';
    for (;;) {
      try {
        problem = '';
        for (const n of running()) {
          const info = String(await command(n.port, 'CLUSTER', 'INFO'));
          if (!info.includes('cluster_state:ok')) problem = `node ${n.port}: cluster_state is not ok`;
        }
        const live = await shards();
        if (!problem && live.length !== masters) problem = `${live.length} live masters, want ${masters}`;
        if (!problem && o.key !== undefined) {
          const owner = await shardOf(o.key);
          if (!owner.master.running || owner.master.port === o.notPort)
            problem = `slot of ${o.key} still owned by ${owner.master.port}`;
        }
        if (!problem && o.replicasOnline) {
          for (const s of live) {
            const online = await onlineReplicas(s.master.port);
            if (online < replicasPerMaster)
              problem = `master ${s.master.port}: ${online} of ${replicasPerMaster} replicas online`;
          }
        }
        if (!problem) return;
      } catch (err) {
        problem = String(err);
      }
      if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy in time: ${problem}`);
      await sleep(100);
    }
  };

  try {
    await waitHealthy({ replicasOnline: true });
  } catch (err) {
    await dispose();
    throw err;
  }

  return {
    nodes,
    urls: nodes.map((n) => n.url),
    slotOf,
    shards,
    shardOf,
    command,
    waitHealthy,
    dispose,
  };
}

/** `n` distinct free ports. */
async function uniquePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export { REDIS_SERVER_MISSING };
