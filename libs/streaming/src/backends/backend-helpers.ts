import { HistoryQuery, MessageMutation, StoredMessage } from '../interfaces';

/**
 * Pick the page of a seq-ordered history that a {@link HistoryQuery} asks for:
 * without `after`, the newest `limit` below `before`; with `after`, the oldest
 * `limit` above it (and below `before`). Oldest first.
 */
export function selectHistory<T extends { seq: number }>(history: readonly T[], q: HistoryQuery): T[] {
  const lo = q.after ?? 0;
  const hi = q.before ?? Infinity;
  const inRange = history.filter((m) => m.seq > lo && m.seq < hi);
  if (q.limit <= 0) return [];
  return q.after !== undefined ? inRange.slice(0, q.limit) : inRange.slice(-q.limit);
}

/**
 * Apply a mutation in place; returns whether anything changed, or `limited`
 * when a new reaction would pass `maxReactions`. Shared by the in-memory stores.
 */
export function applyMutation(m: StoredMessage, mutation: MessageMutation): boolean | 'limited' {
  switch (mutation.kind) {
    case 'edit':
      pushVersion(m, mutation.keepVersions);
      m.content = mutation.content;
      m.editedAt = mutation.at;
      m.editedBy = mutation.by;
      return true;
    case 'delete':
      if (m.deleted) return false;
      pushVersion(m, mutation.keepVersions);
      m.deleted = true;
      m.deletedBy = mutation.by;
      m.deletedAt = mutation.at;
      m.content = '';
      return true;
    case 'react': {
      const own = Object.prototype.hasOwnProperty.call(m.reactions, mutation.reaction);
      const users = own ? m.reactions[mutation.reaction] : [];
      const has = users.includes(mutation.userId);
      if (mutation.add === has) return false;
      if (mutation.add && !own && Object.keys(m.reactions).length >= mutation.maxReactions) return 'limited';
      const next = mutation.add ? [...users, mutation.userId] : users.filter((u) => u !== mutation.userId);
      // defineProperty: a reaction named `__proto__` stays a plain key.
      if (next.length > 0) {
        Object.defineProperty(m.reactions, mutation.reaction, {
          value: next,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else delete m.reactions[mutation.reaction];
      return true;
    }
    case 'reply':
      if (m.deleted) return false;
      m.replyCount = (m.replyCount ?? 0) + 1;
      if (m.lastReplyAt === undefined || mutation.at > m.lastReplyAt) m.lastReplyAt = mutation.at;
      return true;
  }
}

/** Keep the current content as the newest version; at most `keep` versions stay. */
function pushVersion(m: StoredMessage, keep: number): void {
  const versions = (m.versions ??= []);
  versions.push({
    content: m.content,
    editedBy: m.editedBy ?? m.userId,
    editedAt: m.editedAt ?? m.timestamp,
  });
  if (versions.length > keep) versions.splice(0, versions.length - keep);
}
