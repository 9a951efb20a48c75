import type {
  Invitation,
  MemberRecord,
  ModerationLogEntry,
  Restriction,
  RoomRecord,
  StoredMessage,
} from '../../interfaces';

/** Entries the local backend keeps in memory in front of a store, unless told otherwise. */
export const DEFAULT_CACHE_ENTRIES = 20_000;

/**
 * A room as the local backend holds it. In memory mode (no store) this is all
 * of the room, for as long as it exists. With a store it is a cache entry:
 * members, restrictions and invitations are read on first use, and `history`
 * is the newest part of the log only.
 */
export interface LocalRoom {
  record: RoomRecord;
  /** The last seq given out (0: none yet). */
  lastSeq: number;
  /** The lowest seq still in the log (`lastSeq + 1` when it is empty). */
  oldest: number;
  /** Undefined until first used (store only). */
  members?: Map<string, MemberRecord>;
  /** By `kind:userId`; undefined until first used (store only). */
  restrictions?: Map<string, Restriction>;
  invitations?: Map<string, Invitation>;
  /** Memory mode only: a store keeps the log itself. */
  modLog?: ModerationLogEntry[];
  /**
   * The newest messages, oldest first: every message of the log with a seq of
   * at least `cachedFrom` (all of the log when `cachedFrom <= oldest`).
   */
  history: StoredMessage[];
  byId: Map<string, StoredMessage>;
  cachedFrom: number;
  /** Read state (memory mode only; a store keeps it): user id -> highest seq read. */
  reads?: Map<string, number>;
  /** Entries counted for this room at its last {@link RoomCache.fit}. */
  weight: number;
}

/** A new entry for a room whose log stands at `lastSeq` / `oldest`, with nothing of it loaded. */
export function roomEntry(record: RoomRecord, lastSeq: number, oldest: number): LocalRoom {
  return { record, lastSeq, oldest, history: [], byId: new Map(), cachedFrom: lastSeq + 1, weight: 0 };
}

/** One entry per room record, member, restriction, invitation and cached message. */
function weightOf(r: LocalRoom): number {
  return (
    1 + (r.members?.size ?? 0) + (r.restrictions?.size ?? 0) + (r.invitations?.size ?? 0) + r.history.length
  );
}

/**
 * The rooms the local backend holds, least recently used first. Unbounded
 * (`capacity` Infinity) in memory mode, where it is the only copy. In front of
 * a store it holds at most `capacity` entries (see {@link weightOf}): past
 * that, the least recently used rooms are dropped whole; when the room in use
 * is alone over it, its oldest cached messages go. Nothing is lost: the store
 * has it all.
 */
export class RoomCache {
  private readonly rooms = new Map<string, LocalRoom>();
  private total = 0;
  private readonly bounded: boolean;

  constructor(readonly capacity: number) {
    this.bounded = Number.isFinite(capacity);
  }

  get size(): number {
    return this.rooms.size;
  }

  /** Entries held (bounded cache only; 0 in memory mode). */
  get entries(): number {
    return this.total;
  }

  values(): IterableIterator<LocalRoom> {
    return this.rooms.values();
  }

  /** The room if held, without counting it as used. */
  peek(roomId: string): LocalRoom | undefined {
    return this.rooms.get(roomId);
  }

  /** The room if held, now the most recently used. */
  use(roomId: string): LocalRoom | undefined {
    const r = this.rooms.get(roomId);
    if (r && this.bounded) {
      this.rooms.delete(roomId);
      this.rooms.set(roomId, r);
    }
    return r;
  }

  add(r: LocalRoom): void {
    this.remove(r.record.id);
    this.rooms.set(r.record.id, r);
    this.fit(r);
  }

  remove(roomId: string): void {
    const r = this.rooms.get(roomId);
    if (!r) return;
    this.rooms.delete(roomId);
    this.total -= r.weight;
    r.weight = 0;
  }

  clear(): void {
    this.rooms.clear();
    this.total = 0;
  }

  /** Count `r` again (it changed), then drop what is past the capacity. */
  fit(r: LocalRoom): void {
    if (!this.bounded || this.rooms.get(r.record.id) !== r) return;
    const w = weightOf(r);
    this.total += w - r.weight;
    r.weight = w;
    while (this.total > this.capacity) {
      const lru = this.rooms.values().next().value as LocalRoom;
      if (lru !== r) {
        this.remove(lru.record.id);
        continue;
      }
      if (this.rooms.size > 1) {
        // `r` was not used by this call (a read that extended its cache): it goes to the back.
        this.rooms.delete(r.record.id);
        this.rooms.set(r.record.id, r);
        continue;
      }
      this.shrink(r, Math.min(r.history.length, this.total - this.capacity));
      break;
    }
  }

  /** Forget the `n` oldest cached messages of `r` (they stay in the store). */
  private shrink(r: LocalRoom, n: number): void {
    if (n <= 0) return;
    for (const m of r.history.splice(0, n)) r.byId.delete(m.id);
    r.cachedFrom = r.history.length > 0 ? r.history[0].seq : r.lastSeq + 1;
    r.weight -= n;
    this.total -= n;
  }
}
