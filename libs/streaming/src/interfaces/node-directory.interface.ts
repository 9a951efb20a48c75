import type { NodeInfo } from './backend-records';

/** The node directory port: the live nodes of a cluster, by heartbeat. */
export interface NodeDirectory {
  /** Adds or refreshes the node; it is listed until `ttlSeconds` pass without another call. */
  registerNode(info: NodeInfo, ttlSeconds: number): Promise<void>;
  /** The live nodes. */
  listNodes(): Promise<NodeInfo[]>;
  removeNode(nodeId: string): Promise<void>;
}
