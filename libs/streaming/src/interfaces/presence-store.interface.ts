import type { PresenceRecord } from './backend-records';

/**
 * The presence and connection directory port: presence records, which nodes
 * hold a user's connections (and how many), and expiring sets (typing,
 * channel use). What is counted here holds across every node.
 */
export interface PresenceStore {
  /** True when other nodes may share this store. */
  readonly distributed: boolean;

  setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void>;
  getPresence(userIds: string[]): Promise<PresenceRecord[]>;
  removePresence(userId: string): Promise<void>;

  addUserNode(userId: string, nodeId: string): Promise<void>;
  removeUserNode(userId: string, nodeId: string): Promise<void>;
  /** Nodes (dead ones included until reaped) where the user has connections. */
  userNodes(userId: string): Promise<string[]>;
  /** Users with connections on a node. */
  nodeUsers(nodeId: string): Promise<string[]>;

  /**
   * Records that the user has `count` connections on `nodeId` (0 removes the
   * entry). With `max`, a change that would take the user's total over every
   * node above `max` is refused: resolves false and changes nothing (lowering
   * a count is always accepted). Entries of `deadNodes` are removed first and
   * not counted.
   */
  setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits?: { max?: number; deadNodes?: readonly string[] },
  ): Promise<boolean>;
  /** The user's connections per node (dead nodes included until reaped). */
  userConnections(userId: string): Promise<Record<string, number>>;

  /**
   * Adds `member` to the set `key`, or renews it, for `ttlMs`. Resolves its
   * new expiry stamp (epoch ms by the store's clock) and whether it was
   * absent or expired before; or null, changing nothing, when `max` other
   * live members are in. Members expired for over a minute are dropped.
   */
  touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null>;
  /**
   * Removes `member` (expired or not); with `stamp`, only when its expiry is
   * still that stamp (nobody renewed it since). Resolves whether it removed it.
   */
  removeExpiring(key: string, member: string, stamp?: number): Promise<boolean>;
  /** The live (unexpired) members of the set `key`. */
  listExpiring(key: string): Promise<string[]>;
}

/** How long an expired member of an expiring set is kept for its owner to remove (and announce) it. */
export const EXPIRED_MEMBER_GRACE_MS = 60_000;
