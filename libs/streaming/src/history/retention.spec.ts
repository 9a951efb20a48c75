import { trimShare } from './retention';

describe('trimShare', () => {
  const rooms = Array.from({ length: 3000 }, (_, i) => `room-${i}`);

  it('gives every room to exactly one of the live nodes, about evenly, whatever order each node lists them in', () => {
    const nodes = ['node-a', 'node-b', 'node-c'];
    const shares = nodes.map((self, i) => trimShare(i % 2 ? [...nodes].reverse() : nodes, self));
    const counts = nodes.map(() => 0);
    for (const room of rooms) {
      const owners = shares.map((mine, i) => (mine(room) ? i : -1)).filter((i) => i >= 0);
      expect(owners).toHaveLength(1);
      counts[owners[0]]++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('trims every room on a single node, and on a node not in the list yet', () => {
    expect(rooms.every(trimShare([], 'a'))).toBe(true);
    expect(rooms.every(trimShare(['a'], 'a'))).toBe(true);
    expect(rooms.every(trimShare(['b', 'c'], 'a'))).toBe(true);
  });
});
