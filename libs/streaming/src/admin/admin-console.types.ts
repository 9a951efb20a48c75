import type { WireModerationEntry } from '../protocol/wire';
import type { StreamingStatsSnapshot } from '../streaming-manager.service';

/** A live node as the admin console shows it. */
export interface AdminNode {
  node_id: string;
  /** The node that answered. */
  self: boolean;
  region: string | null;
  address: string | null;
  started_at: string;
  /** Null for this node before its first heartbeat. */
  last_heartbeat: string | null;
  heartbeat_age_s: number | null;
  connections: number;
  /** As of the node's last heartbeat (live for this node); null when the node does not say. */
  messages_per_second: number | null;
  total_messages: number | null;
}

/** `GET <admin>/api/overview`. */
export interface AdminOverview {
  node_id: string;
  backend: string;
  time: string;
  /** This node's counters, as `GET <routes.stats>`. */
  node: StreamingStatsSnapshot;
  nodes: AdminNode[];
  totals: { nodes: number; connections: number; rooms: number; messages_per_second: number };
}

/** One room of `GET <admin>/api/rooms`. */
export interface AdminRoom {
  id: string;
  name: string;
  kind: 'room' | 'direct';
  private: boolean;
  members: number;
  /** Connections of members on the node that answered. */
  local_connections: number;
  last_seq: number;
  /** Messages per second between the last two listings (a second or more apart); null on the first. */
  messages_per_second: number | null;
  created_at: string;
}

/** `GET <admin>/api/rooms`. */
export interface AdminRooms {
  /** Rooms in the store. */
  total: number;
  /** Rooms whose members and seq were read. */
  counted: number;
  rooms: AdminRoom[];
}

/** `GET <admin>/api/connections`. */
export interface AdminConnections {
  node_id: string;
  /** The connections of the node that answered. */
  local: Array<{
    id: string;
    user_id: string;
    name: string | null;
    anonymous: boolean;
    transport: 'ws' | 'sse';
    codec: 'json' | 'msgpack';
    connected_at: string;
    rooms: number;
    /** Frames waiting for the socket. */
    queued: number;
  }>;
  /** Users with connections, with the live nodes that hold them. */
  users: Array<{ user_id: string; nodes: string[]; local_connections: number }>;
  /** True when a list was cut at its size limit. */
  truncated: boolean;
}

/** One moderation action (`GET <admin>/api/moderation`): the moderation log's wire entry. */
export type AdminModerationEntry = WireModerationEntry;
