/**
 * Channel names and NATS-style patterns (PROTOCOL.md section 4).
 *
 * A channel name is 1 to {@link MAX_CHANNEL_TOKENS} dot-separated tokens of
 * `[A-Za-z0-9_\-:@]+`, at most {@link MAX_CHANNEL_LENGTH} characters. A pattern
 * may also use two wildcard tokens: `*` matches exactly one token, `>` matches
 * one or more trailing tokens and is only valid as the last token.
 *
 * | pattern | matches                  | does not match |
 * | ------- | ------------------------ | -------------- |
 * | `a.*`   | `a.b`                    | `a`, `a.b.c`   |
 * | `a.>`   | `a.b`, `a.b.c`           | `a`            |
 * | `*.b`   | `a.b`, `x.b`             | `b`, `a.b.c`   |
 * | `>`     | every channel            |                |
 */

/** Most tokens in a channel name or pattern. */
export const MAX_CHANNEL_TOKENS = 16;
/** Longest channel name or pattern, in characters. */
export const MAX_CHANNEL_LENGTH = 256;
/** Wildcard matching exactly one token. */
export const SINGLE_WILDCARD = '*';
/** Wildcard matching one or more trailing tokens. */
export const TAIL_WILDCARD = '>';

const TOKEN_RE = /^[A-Za-z0-9_\-:@]+$/;

function validate(value: unknown, what: 'channel name' | 'pattern', allowWildcards: boolean): string | null {
  if (typeof value !== 'string') return `the ${what} must be a string`;
  if (value.length === 0) return `the ${what} must not be empty`;
  if (value.length > MAX_CHANNEL_LENGTH) {
    return `the ${what} is longer than ${MAX_CHANNEL_LENGTH} characters`;
  }
  const tokens = value.split('.');
  if (tokens.length > MAX_CHANNEL_TOKENS) return `the ${what} has more than ${MAX_CHANNEL_TOKENS} tokens`;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.length === 0) return `the ${what} "${value}" has an empty token (leading, trailing or double dot)`;
    if (t === SINGLE_WILDCARD || t === TAIL_WILDCARD) {
      if (!allowWildcards) return `wildcards (* and >) are only allowed in subscription patterns`;
      if (t === TAIL_WILDCARD && i !== tokens.length - 1) return `">" is only allowed as the last token`;
      continue;
    }
    if (!TOKEN_RE.test(t)) {
      return `the ${what} token "${t}" may only contain letters, digits, "_", "-", ":" and "@" (or be a wildcard * or >)`;
    }
  }
  return null;
}

/** Why `name` is not a valid channel name (wildcards are refused), or null when it is. */
export function validateChannelName(name: unknown): string | null {
  return validate(name, 'channel name', false);
}

/** Why `pattern` is not a valid subscription pattern, or null when it is. A plain name is a valid pattern. */
export function validatePattern(pattern: unknown): string | null {
  return validate(pattern, 'pattern', true);
}

/** True when a (valid) pattern contains a wildcard token. */
export function hasWildcard(pattern: string): boolean {
  for (const t of pattern.split('.')) if (t === SINGLE_WILDCARD || t === TAIL_WILDCARD) return true;
  return false;
}

/**
 * Does `pattern` match `channel`? A direct token-by-token comparison, for
 * one-off checks (registry queries); per-publish matching uses {@link ChannelTrie}.
 */
export function patternMatches(pattern: string, channel: string): boolean {
  const p = pattern.split('.');
  const c = channel.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === TAIL_WILDCARD) return i === p.length - 1 && c.length > i;
    if (i >= c.length) return false;
    if (p[i] !== SINGLE_WILDCARD && p[i] !== c[i]) return false;
  }
  return p.length === c.length;
}

class TrieNode<T> {
  /** Literal children by token. */
  children: Map<string, TrieNode<T>> | null = null;
  /** Child for a `*` token. */
  star: TrieNode<T> | null = null;
  /** Child for a trailing `>` token (a leaf: only `values`). */
  tail: TrieNode<T> | null = null;
  /** Values of the patterns that end at this node. */
  values: Set<T> | null = null;

  isEmpty(): boolean {
    return (
      this.values === null &&
      this.star === null &&
      this.tail === null &&
      (this.children === null || this.children.size === 0)
    );
  }
}

/**
 * Patterns in a token trie. `match(channel)` walks the trie along the
 * channel's tokens, following at each level the literal child, the `*` child
 * and the `>` child, so its cost depends on the channel's depth and on the
 * patterns that match, not on how many non-matching patterns are stored.
 *
 * Values are kept per pattern in a Set: adding the same (pattern, value)
 * twice stores it once. Nodes left empty by `remove` are pruned.
 */
export class ChannelTrie<T> {
  private readonly root = new TrieNode<T>();
  private entries = 0;
  private patterns = 0;

  /** Number of (pattern, value) entries. */
  get size(): number {
    return this.entries;
  }

  /** Number of distinct patterns with at least one value. */
  get patternCount(): number {
    return this.patterns;
  }

  /** Store `value` under `pattern`; returns false when it was there already. Throws on an invalid pattern. */
  add(pattern: string, value: T): boolean {
    const reason = validatePattern(pattern);
    if (reason !== null) throw new Error(`invalid channel pattern: ${reason}`);
    let node = this.root;
    for (const token of pattern.split('.')) {
      if (token === SINGLE_WILDCARD) {
        node = node.star ??= new TrieNode<T>();
      } else if (token === TAIL_WILDCARD) {
        node = node.tail ??= new TrieNode<T>();
      } else {
        node.children ??= new Map();
        let next = node.children.get(token);
        if (!next) node.children.set(token, (next = new TrieNode<T>()));
        node = next;
      }
    }
    if (node.values === null) {
      node.values = new Set();
      this.patterns++;
    }
    if (node.values.has(value)) return false;
    node.values.add(value);
    this.entries++;
    return true;
  }

  /** Remove `value` from `pattern`; prunes nodes left empty. Returns false when it was not there. */
  remove(pattern: string, value: T): boolean {
    if (typeof pattern !== 'string' || pattern.length === 0) return false;
    const tokens = pattern.split('.');
    const path: TrieNode<T>[] = [this.root];
    let node: TrieNode<T> | null | undefined = this.root;
    for (const token of tokens) {
      if (token === SINGLE_WILDCARD) node = node.star;
      else if (token === TAIL_WILDCARD) node = node.tail;
      else node = node.children?.get(token);
      if (!node) return false;
      path.push(node);
    }
    if (!node.values?.delete(value)) return false;
    this.entries--;
    if (node.values.size === 0) {
      node.values = null;
      this.patterns--;
    }
    // Prune bottom-up: unlink each empty node from its parent.
    for (let i = tokens.length; i > 0 && path[i].isEmpty(); i--) {
      const parent = path[i - 1];
      const token = tokens[i - 1];
      if (token === SINGLE_WILDCARD) parent.star = null;
      else if (token === TAIL_WILDCARD) parent.tail = null;
      else {
        parent.children!.delete(token);
        if (parent.children!.size === 0) parent.children = null;
      }
    }
    return true;
  }

  /** True when `pattern` holds `value`. */
  has(pattern: string, value: T): boolean {
    return this.find(pattern)?.values?.has(value) ?? false;
  }

  /** True when `pattern` holds at least one value. */
  hasPattern(pattern: string): boolean {
    return this.find(pattern)?.values != null;
  }

  private find(pattern: string): TrieNode<T> | undefined {
    let node: TrieNode<T> | null | undefined = this.root;
    for (const token of pattern.split('.')) {
      if (token === SINGLE_WILDCARD) node = node.star;
      else if (token === TAIL_WILDCARD) node = node.tail;
      else node = node.children?.get(token);
      if (!node) return undefined;
    }
    return node;
  }

  /** Values of every pattern matching the channel name (a value stored under two matching patterns appears twice). */
  match(channel: string): T[] {
    const out: T[] = [];
    this.visit(channel, (v) => {
      out.push(v);
    });
    return out;
  }

  /**
   * Call `fn` with the value of every pattern matching `channel`, without
   * building an array (the publish hot path). `channel` should be a valid name.
   */
  visit(channel: string, fn: (value: T) => void): void {
    if (this.entries === 0) return;
    this.walk(this.root, channel.split('.'), 0, fn);
  }

  private walk(node: TrieNode<T>, tokens: string[], i: number, fn: (value: T) => void): void {
    if (i === tokens.length) {
      if (node.values) for (const v of node.values) fn(v);
      return;
    }
    // `>` here covers tokens[i..], which is one or more tokens.
    if (node.tail?.values) for (const v of node.tail.values) fn(v);
    const literal = node.children?.get(tokens[i]);
    if (literal) this.walk(literal, tokens, i + 1, fn);
    if (node.star) this.walk(node.star, tokens, i + 1, fn);
  }
}
