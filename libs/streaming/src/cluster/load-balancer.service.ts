import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { NodeRegistryService } from './node-registry.service';
import { NodeInfo } from '../interfaces';
import { InjectStreamingOptions } from '../streaming.constants';

/** Load balancing strategies. */
export type LoadBalancerStrategy = StreamingOptions['loadBalancer'];

/** Where a client should connect. */
export interface RouteDecision {
  node_id: string;
  address: string | null;
  region: string | null;
  strategy: LoadBalancerStrategy;
  key: string | null;
  nodes: number;
}

/** Rendezvous (highest random weight) score: stable, and moving one node moves only its keys. */
function score(key: string, nodeId: string): bigint {
  return createHash('sha1').update(`${key}\u0000${nodeId}`).digest().readBigUInt64BE(0);
}

/** Pick the node a key belongs to by rendezvous hashing (consistent hashing without a ring). */
export function consistentPick(key: string, nodes: readonly NodeInfo[]): NodeInfo {
  let best = nodes[0];
  let bestScore = -1n;
  for (const n of nodes) {
    const s = score(key, n.nodeId);
    if (s > bestScore || (s === bestScore && n.nodeId < best.nodeId)) {
      best = n;
      bestScore = s;
    }
  }
  return best;
}

/** The node with the fewest connections (ties: lowest id). */
export function leastConnectionsPick(nodes: readonly NodeInfo[]): NodeInfo {
  return [...nodes].sort((a, b) => a.connections - b.connections || a.nodeId.localeCompare(b.nodeId))[0];
}

/**
 * Chooses a node for a room or a user among the live nodes of the registry:
 * consistent hashing (a room or user always lands on the same node while the
 * node set is stable), least connections, round robin, or geographic (nodes
 * of the client's region first, then consistent hashing among them).
 */
@Injectable()
export class LoadBalancerService {
  private rr = 0;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly nodes: NodeRegistryService,
  ) {}

  async route(query: {
    room?: string;
    user?: string;
    region?: string;
    strategy?: LoadBalancerStrategy;
  }): Promise<RouteDecision> {
    const strategy = query.strategy ?? this.options.loadBalancer;
    const live = (await this.nodes.listNodes()).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    if (live.length === 0) throw new StreamingError('backend_unavailable', 'no live node in the registry');
    const key =
      query.room !== undefined
        ? `room:${query.room}`
        : query.user !== undefined
          ? `user:${query.user}`
          : null;
    let pick: NodeInfo;
    switch (strategy) {
      case 'least_connections':
        pick = leastConnectionsPick(live);
        break;
      case 'round_robin':
        pick = live[this.rr++ % live.length];
        break;
      case 'geographic': {
        const region = query.region ?? '';
        const local = live.filter((n) => region !== '' && n.region === region);
        const pool = local.length > 0 ? local : live;
        pick = key ? consistentPick(key, pool) : leastConnectionsPick(pool);
        break;
      }
      default:
        pick = key ? consistentPick(key, live) : leastConnectionsPick(live);
    }
    return {
      node_id: pick.nodeId,
      address: pick.address ?? null,
      region: pick.region ?? null,
      strategy,
      key,
      nodes: live.length,
    };
  }
}
