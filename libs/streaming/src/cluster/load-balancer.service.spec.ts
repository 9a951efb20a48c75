import { consistentPick, leastConnectionsPick, LoadBalancerService } from './load-balancer.service';
import { NodeRegistryService } from './node-registry.service';
import { defaultStreamingOptions } from '../config/streaming-defaults';
import { NodeInfo } from '../interfaces';

const node = (nodeId: string, connections = 0, region?: string): NodeInfo => ({
  nodeId,
  connections,
  region,
  startedAt: '',
  lastHeartbeat: '',
});

describe('consistentPick', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((id) => node(id));
  const keys = Array.from({ length: 2000 }, (_, i) => `room:${i}`);

  it('spreads keys over every node', () => {
    const counts = new Map<string, number>();
    for (const k of keys)
      counts.set(consistentPick(k, nodes).nodeId, (counts.get(consistentPick(k, nodes).nodeId) ?? 0) + 1);
    for (const id of ['a', 'b', 'c', 'd']) expect(counts.get(id)).toBeGreaterThan(350);
  });

  it('moves only the keys of a removed node', () => {
    const without = nodes.filter((n) => n.nodeId !== 'c');
    for (const k of keys) {
      const before = consistentPick(k, nodes).nodeId;
      const after = consistentPick(k, without).nodeId;
      if (before !== 'c') expect(after).toBe(before);
    }
  });

  it('does not depend on the order of the node list', () => {
    const reversed = [...nodes].reverse();
    for (const k of keys.slice(0, 200))
      expect(consistentPick(k, reversed).nodeId).toBe(consistentPick(k, nodes).nodeId);
  });
});

describe('LoadBalancerService', () => {
  const registry = (nodes: NodeInfo[]) =>
    ({ listNodes: () => Promise.resolve(nodes) }) as unknown as NodeRegistryService;
  const options = { ...defaultStreamingOptions(), nodeId: 'a' };

  it('least connections picks the emptiest node', async () => {
    const lb = new LoadBalancerService(options, registry([node('a', 9), node('b', 2), node('c', 5)]));
    expect((await lb.route({ strategy: 'least_connections' })).node_id).toBe('b');
    expect(leastConnectionsPick([node('x', 1), node('w', 1)]).nodeId).toBe('w');
  });

  it('geographic prefers the client region and falls back to all nodes', async () => {
    const nodes = [node('eu1', 5, 'eu'), node('eu2', 1, 'eu'), node('us1', 0, 'us')];
    const lb = new LoadBalancerService(options, registry(nodes));
    expect((await lb.route({ strategy: 'geographic', region: 'eu' })).node_id).toBe('eu2');
    expect(['eu1', 'eu2']).toContain(
      (await lb.route({ strategy: 'geographic', region: 'eu', room: 'r1' })).node_id,
    );
    expect((await lb.route({ strategy: 'geographic', region: 'ap' })).node_id).toBe('us1');
  });

  it('round robin cycles and consistent hashing is stable per room', async () => {
    const lb = new LoadBalancerService(options, registry([node('a'), node('b')]));
    const seen = [
      await lb.route({ strategy: 'round_robin' }),
      await lb.route({ strategy: 'round_robin' }),
    ].map((r) => r.node_id);
    expect(seen.sort()).toEqual(['a', 'b']);
    const first = await lb.route({ room: 'general' });
    expect((await lb.route({ room: 'general' })).node_id).toBe(first.node_id);
    expect(first.strategy).toBe('consistent_hash');
  });

  it('refuses when no node is alive', async () => {
    const lb = new LoadBalancerService(options, registry([]));
    await expect(lb.route({ room: 'x' })).rejects.toMatchObject({ code: 'backend_unavailable' });
  });
});
