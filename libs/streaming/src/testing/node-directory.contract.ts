/** The {@link NodeDirectory} contract: the live nodes of a cluster, by heartbeat. */
import type { NodeDirectory, NodeInfo } from '../interfaces';
import { eventually, uid, useSubject, type ContractSubjectFactory } from './contract-helpers';

/**
 * Declares the behaviour every {@link NodeDirectory} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describeNodeDirectoryContract(
  name: string,
  factory: ContractSubjectFactory<NodeDirectory>,
): void {
  describe(`NodeDirectory contract: ${name}`, () => {
    declareNodeDirectoryTests(useSubject(factory));
  });
}

/** The node directory's tests, in the current `describe`, against `subject()`. */
export function declareNodeDirectoryTests(subject: () => NodeDirectory): void {
  describe('node registry', () => {
    const node = (over: Partial<NodeInfo> = {}): NodeInfo => ({
      nodeId: uid('node'),
      startedAt: new Date().toISOString(),
      lastHeartbeat: new Date().toISOString(),
      connections: 3,
      region: 'eu-west',
      address: '10.0.0.1:3000',
      ...over,
    });

    it('registerNode, listNodes and removeNode', async () => {
      const directory = subject();
      const a = node();
      const b = node({ region: undefined, address: undefined });
      delete b.region;
      delete b.address;
      await directory.registerNode(a, 60);
      await directory.registerNode(b, 60);

      let listed = await directory.listNodes();
      expect(listed.find((n) => n.nodeId === a.nodeId)).toEqual(a);
      expect(listed.find((n) => n.nodeId === b.nodeId)).toEqual(b);

      // A heartbeat replaces the entry.
      const a2 = { ...a, connections: 42, lastHeartbeat: new Date(Date.now() + 1000).toISOString() };
      await directory.registerNode(a2, 60);
      listed = await directory.listNodes();
      expect(listed.filter((n) => n.nodeId === a.nodeId)).toEqual([a2]);

      await directory.removeNode(a.nodeId);
      listed = await directory.listNodes();
      expect(listed.find((n) => n.nodeId === a.nodeId)).toBeUndefined();
      expect(listed.find((n) => n.nodeId === b.nodeId)).toEqual(b);
      await directory.removeNode(uid('unknown'));
    });

    it('a node disappears after its TTL', async () => {
      const directory = subject();
      const short = node();
      const long = node();
      await directory.registerNode(short, 0.2);
      await directory.registerNode(long, 60);
      expect((await directory.listNodes()).map((n) => n.nodeId)).toEqual(
        expect.arrayContaining([short.nodeId, long.nodeId]),
      );

      await eventually(async () =>
        expect((await directory.listNodes()).map((n) => n.nodeId)).not.toContain(short.nodeId),
      );
      expect((await directory.listNodes()).map((n) => n.nodeId)).toContain(long.nodeId);
    });
  });
}
