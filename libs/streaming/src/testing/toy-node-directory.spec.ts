/**
 * A third-party store for one port, tested alone: a Map-based NodeDirectory
 * with expiry runs the NodeDirectory contract, and nothing else.
 */
import type { NodeDirectory, NodeInfo } from '../interfaces';
import { describeNodeDirectoryContract } from './index';

/** Nodes in a Map, each with the time (epoch ms) its last heartbeat runs out. */
class ToyNodeDirectory implements NodeDirectory {
  private readonly nodes = new Map<string, { info: NodeInfo; expires: number }>();

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    this.nodes.set(info.nodeId, { info: structuredClone(info), expires: Date.now() + ttlSeconds * 1000 });
  }

  async listNodes(): Promise<NodeInfo[]> {
    const now = Date.now();
    const live: NodeInfo[] = [];
    for (const [id, node] of this.nodes) {
      if (node.expires <= now) this.nodes.delete(id);
      else live.push(structuredClone(node.info));
    }
    return live;
  }

  async removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
  }
}

describeNodeDirectoryContract('toy Map-based directory', () => new ToyNodeDirectory());
