/**
 * Channel matcher benchmark: cost of matching one publish against the
 * subscriptions of a node, with 1k, 10k and 100k NON-matching subscriptions
 * plus a fixed set of 10 matching ones, for the token trie (ChannelTrie)
 * and for a naive linear scan over the patterns.
 *
 * Run (from the repository root; ts-node is not installed, so compile first):
 *
 *   npx tsc --outDir /tmp/bench-out --module commonjs --target es2022 --esModuleInterop \
 *     --skipLibCheck bench/channel-matcher.bench.ts libs/streaming/src/channels/channel-trie.ts
 *   node /tmp/bench-out/bench/channel-matcher.bench.js
 *
 * Expected: the trie's ns/op stays flat as non-matching subscriptions grow;
 * the linear scan grows with them.
 */
import { ChannelTrie, patternMatches } from '../libs/streaming/src/channels/channel-trie';

const CHANNEL = 'hot.eu.created';

/** 10 subscriptions matching CHANNEL, through every kind of pattern. */
const MATCHING = [
  'hot.eu.created',
  'hot.eu.created',
  'hot.*.created',
  'hot.eu.*',
  'hot.>',
  'hot.eu.>',
  '*.eu.created',
  '*.*.created',
  '*.>',
  '>',
];

/**
 * The i-th non-matching subscription: a realistic mix of literal and wildcard
 * patterns, many sharing CHANNEL's first token or shape, none matching it.
 */
function nonMatching(i: number): string {
  switch (i % 10) {
    case 0:
      return `orders.r${i}.created`;
    case 1:
      return `user.u${i}.notifications`;
    case 2:
      return `hot.eu${i}.created`; // same first token, other second token
    case 3:
      return `hot.eu.created${i}`; // same prefix, other last token
    case 4:
      return `hot.*.deleted${i}`;
    case 5:
      return `*.r${i}.created`; // wildcard first token
    case 6:
      return `metrics.*.n${i}`;
    case 7:
      return `t${i}.>`;
    case 8:
      return `hot.eu.created.x${i}`; // one token deeper
    default:
      return `*.eu.created.y${i}.>`;
  }
}

/** Baseline: every subscription in an array, each pattern compared with the channel on every publish. */
class LinearMatcher<T> {
  private readonly subs: Array<{ tokens: string[]; value: T }> = [];

  add(pattern: string, value: T): void {
    this.subs.push({ tokens: pattern.split('.'), value });
  }

  visit(channel: string, fn: (value: T) => void): void {
    const c = channel.split('.');
    for (const { tokens: p, value } of this.subs) {
      let ok = true;
      let i = 0;
      for (; i < p.length; i++) {
        if (p[i] === '>') break;
        if (i >= c.length || (p[i] !== '*' && p[i] !== c[i])) {
          ok = false;
          break;
        }
      }
      if (ok && (i < p.length ? c.length > i : c.length === p.length)) fn(value);
    }
  }
}

interface Matcher {
  visit(channel: string, fn: (value: number) => void): void;
}

/** ns per publish-match, best of `rounds` timed rounds of `iterations` matches each. */
function measure(matcher: Matcher, iterations: number, rounds = 5): number {
  let found = 0;
  const count = (): void => {
    found++;
  };
  for (let i = 0; i < Math.min(iterations, 1000); i++) matcher.visit(CHANNEL, count); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    found = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) matcher.visit(CHANNEL, count);
    const ns = Number(process.hrtime.bigint() - start) / iterations;
    if (found !== iterations * MATCHING.length) {
      throw new Error(`expected ${MATCHING.length} matches per publish, got ${found / iterations}`);
    }
    best = Math.min(best, ns);
  }
  return best;
}

function main(): void {
  // Sanity: the generated non-matching patterns really do not match, the matching ones do.
  for (let i = 0; i < 100; i++) {
    if (patternMatches(nonMatching(i), CHANNEL)) throw new Error(`${nonMatching(i)} matches ${CHANNEL}`);
  }
  for (const p of MATCHING) if (!patternMatches(p, CHANNEL)) throw new Error(`${p} does not match`);

  const rows: Array<Record<string, string | number>> = [];
  for (const size of [1_000, 10_000, 100_000]) {
    const trie = new ChannelTrie<number>();
    const linear = new LinearMatcher<number>();
    for (let i = 0; i < size; i++) {
      trie.add(nonMatching(i), i);
      linear.add(nonMatching(i), i);
    }
    MATCHING.forEach((p, k) => {
      trie.add(p, -1 - k);
      linear.add(p, -1 - k);
    });
    const trieNs = measure(trie, 200_000);
    const linearNs = measure(linear, Math.max(20, Math.round(20_000_000 / size)));
    rows.push({
      'non-matching subs': size,
      'matching subs': MATCHING.length,
      'trie ns/op': Math.round(trieNs),
      'linear scan ns/op': Math.round(linearNs),
      'trie speed-up': `${(linearNs / trieNs).toFixed(0)}x`,
    });
  }
  console.log(`Publishing to "${CHANNEL}" (node ${process.version}):`);
  console.table(rows);
}

main();
