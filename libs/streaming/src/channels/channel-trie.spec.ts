import {
  ChannelTrie,
  MAX_CHANNEL_LENGTH,
  MAX_CHANNEL_TOKENS,
  hasWildcard,
  patternMatches,
  validateChannelName,
  validatePattern,
} from './channel-trie';

/** [pattern, channel, matches] straight from PROTOCOL.md section 4 (NATS semantics). */
const CASES: Array<[string, string, boolean]> = [
  ['a', 'a', true],
  ['a', 'b', false],
  ['a', 'a.b', false],
  ['a.b', 'a.b', true],
  ['a.b', 'a', false],
  ['a.b', 'a.b.c', false],
  ['a.*', 'a.b', true],
  ['a.*', 'a.b.c', false],
  ['a.*', 'a', false],
  ['a.*', 'b.c', false],
  ['a.>', 'a.b', true],
  ['a.>', 'a.b.c', true],
  ['a.>', 'a.b.c.d.e', true],
  ['a.>', 'a', false],
  ['a.>', 'b.c', false],
  ['*.b', 'a.b', true],
  ['*.b', 'x.b', true],
  ['*.b', 'b', false],
  ['*.b', 'a.b.c', false],
  ['*.b', 'a.c', false],
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['>', 'a', true],
  ['>', 'a.b.c', true],
  ['*.*', 'a.b', true],
  ['*.*', 'a', false],
  ['*.*', 'a.b.c', false],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a.b.d', false],
  ['a.*.c', 'a.c', false],
  ['*.b.>', 'a.b.c', true],
  ['*.b.>', 'a.b', false],
  ['a.*.>', 'a.b.c.d', true],
  ['a.*.>', 'a.b', false],
  ['user.alice.*', 'user.alice.notifications', true],
  ['user.alice.*', 'user.bob.notifications', false],
];

describe('channel names and patterns', () => {
  it.each([
    ['a'],
    ['orders.eu.created'],
    ['user.alice.notifications'],
    ['A-Z_0-9:@.x'],
    ['a.'.repeat(MAX_CHANNEL_TOKENS - 1) + 'a'],
  ])('accepts the name %s', (name) => {
    expect(validateChannelName(name)).toBeNull();
    expect(validatePattern(name)).toBeNull();
  });

  it.each([
    ['', 'empty'],
    ['a..b', 'empty token'],
    ['.a', 'empty token'],
    ['a.', 'empty token'],
    ['a b', 'may only contain'],
    ['a/b', 'may only contain'],
    ['é', 'may only contain'],
    ['a.*', 'only allowed in subscription patterns'],
    ['a.>', 'only allowed in subscription patterns'],
    ['a.b*', 'may only contain'],
    ['a.'.repeat(MAX_CHANNEL_TOKENS) + 'a', 'tokens'],
    ['x'.repeat(MAX_CHANNEL_LENGTH + 1), 'longer'],
  ])('refuses the name %j (%s)', (name, reason) => {
    expect(validateChannelName(name)).toContain(reason);
  });

  it('refuses non-strings with a reason', () => {
    expect(validateChannelName(42)).toMatch(/string/);
    expect(validatePattern(undefined)).toMatch(/string/);
  });

  it.each([['a.*'], ['a.>'], ['*.b'], ['>'], ['*'], ['*.*.>'], ['a.*.c']])('accepts the pattern %s', (p) => {
    expect(validatePattern(p)).toBeNull();
    expect(hasWildcard(p)).toBe(true);
  });

  it.each([['a.>.b'], ['>.a'], ['a.**'], ['a.>>'], ['a..*'], ['a.*x']])('refuses the pattern %s', (p) => {
    expect(validatePattern(p)).not.toBeNull();
  });

  it('hasWildcard is false for plain names', () => {
    expect(hasWildcard('a.b.c')).toBe(false);
  });

  it.each(CASES)('patternMatches(%s, %s) is %s', (pattern, channel, expected) => {
    expect(patternMatches(pattern, channel)).toBe(expected);
  });
});

describe('ChannelTrie', () => {
  it.each(CASES)('%s vs %s: %s (same as the direct comparison)', (pattern, channel, expected) => {
    const trie = new ChannelTrie<string>();
    trie.add(pattern, 'v');
    expect(trie.match(channel)).toEqual(expected ? ['v'] : []);
  });

  it('returns the values of every matching pattern among many', () => {
    const trie = new ChannelTrie<string>();
    const patterns = [...new Set(CASES.map(([p]) => p))];
    for (const p of patterns) trie.add(p, p);
    const channels = [...new Set(CASES.map(([, c]) => c))];
    for (const c of channels) {
      expect(trie.match(c).sort()).toEqual(patterns.filter((p) => patternMatches(p, c)).sort());
    }
  });

  it('stores several values per pattern, once each', () => {
    const trie = new ChannelTrie<number>();
    expect(trie.add('a.*', 1)).toBe(true);
    expect(trie.add('a.*', 2)).toBe(true);
    expect(trie.add('a.*', 1)).toBe(false);
    expect(trie.size).toBe(2);
    expect(trie.patternCount).toBe(1);
    expect(trie.match('a.b').sort()).toEqual([1, 2]);
    expect(trie.has('a.*', 1)).toBe(true);
    expect(trie.has('a.*', 3)).toBe(false);
    expect(trie.hasPattern('a.*')).toBe(true);
    expect(trie.hasPattern('a')).toBe(false);
  });

  it('reports a value once per matching pattern', () => {
    const trie = new ChannelTrie<string>();
    trie.add('a.b', 'x');
    trie.add('a.*', 'x');
    trie.add('>', 'x');
    expect(trie.match('a.b')).toEqual(['x', 'x', 'x']);
  });

  it('throws on an invalid pattern', () => {
    const trie = new ChannelTrie<string>();
    expect(() => trie.add('a.>.b', 'x')).toThrow(/invalid channel pattern/);
    expect(() => trie.add('', 'x')).toThrow();
  });

  it('removes values and prunes empty nodes', () => {
    const trie = new ChannelTrie<string>();
    trie.add('a.b.c', 'x');
    trie.add('a.*.>', 'y');
    trie.add('a', 'z');
    expect(trie.remove('a.b.c', 'nope')).toBe(false);
    expect(trie.remove('a.b.d', 'x')).toBe(false);
    expect(trie.remove('a.b.c', 'x')).toBe(true);
    expect(trie.remove('a.b.c', 'x')).toBe(false);
    expect(trie.match('a.b.c')).toEqual(['y']);
    expect(trie.remove('a.*.>', 'y')).toBe(true);
    expect(trie.match('a.b.c')).toEqual([]);
    expect(trie.match('a')).toEqual(['z']);
    expect(trie.remove('a', 'z')).toBe(true);
    expect(trie.size).toBe(0);
    expect(trie.patternCount).toBe(0);
    // Every node is gone: the root is empty again.
    const root = (trie as unknown as { root: { isEmpty(): boolean } }).root;
    expect(root.isEmpty()).toBe(true);
  });

  it('keeps shared prefixes when pruning a sibling', () => {
    const trie = new ChannelTrie<string>();
    trie.add('a.b.c', 'x');
    trie.add('a.b', 'y');
    trie.add('a.*', 'w');
    trie.remove('a.b.c', 'x');
    expect(trie.match('a.b')).toEqual(['y', 'w']);
    expect(trie.hasPattern('a.b.c')).toBe(false);
    trie.remove('a.b', 'y');
    expect(trie.match('a.b')).toEqual(['w']);
  });

  it('does not visit non-matching subscriptions', () => {
    const trie = new ChannelTrie<number>();
    for (let i = 0; i < 5000; i++) trie.add(`other${i}.x.y`, i);
    trie.add('hot.*.y', -1);
    const seen: number[] = [];
    trie.visit('hot.x.y', (v) => seen.push(v));
    expect(seen).toEqual([-1]);
  });
});
