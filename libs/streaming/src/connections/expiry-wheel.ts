/**
 * Items keyed by the time they expire, in buckets of `resolutionMs`: a tick
 * touches only the buckets that came due since the last one (and the items
 * in them), never every item. Adding, moving and removing an item is O(1).
 *
 * Used for token expiry (`auth.validate_on_message`): a node holding a
 * million connections does not walk them once a second to find the few
 * whose token ran out.
 */
export class ExpiryWheel<T> {
  /** Bucket index (`floor(at / resolutionMs)`) → the items expiring in it. */
  private readonly buckets = new Map<number, Set<T>>();
  /** When each item expires (epoch ms). */
  private readonly expiry = new Map<T, number>();
  /** The lowest bucket that may hold due items: everything below it was expired already. */
  private cursor: number;

  constructor(
    private readonly resolutionMs = 1000,
    now: number = Date.now(),
  ) {
    if (!(resolutionMs > 0)) throw new RangeError('resolutionMs must be > 0');
    this.cursor = Math.floor(now / resolutionMs);
  }

  /** Items held. */
  get size(): number {
    return this.expiry.size;
  }

  /** Buckets held (for tests: they never outnumber the items). */
  get bucketCount(): number {
    return this.buckets.size;
  }

  has(item: T): boolean {
    return this.expiry.has(item);
  }

  /** When `item` expires, or undefined when it is not held. */
  expiresAt(item: T): number | undefined {
    return this.expiry.get(item);
  }

  /** Expire `item` at `at` (epoch ms), replacing the time it had. */
  set(item: T, at: number): void {
    this.delete(item);
    // An item already due goes into the next bucket a tick looks at.
    const slot = Math.max(Math.floor(at / this.resolutionMs), this.cursor);
    let set = this.buckets.get(slot);
    if (!set) this.buckets.set(slot, (set = new Set()));
    set.add(item);
    this.expiry.set(item, at);
  }

  /** Forget `item`; true when it was held. */
  delete(item: T): boolean {
    const at = this.expiry.get(item);
    if (at === undefined) return false;
    this.expiry.delete(item);
    const slot = Math.max(Math.floor(at / this.resolutionMs), this.cursor);
    const set = this.buckets.get(slot);
    if (set) {
      set.delete(item);
      if (set.size === 0) this.buckets.delete(slot);
    }
    return true;
  }

  /**
   * Remove and return the items whose time is at or before `now`, earliest
   * bucket first. Costs the buckets that came due since the last call plus
   * the items in them (a clock that jumped far ahead costs at most every
   * bucket once).
   */
  expire(now: number): T[] {
    const due: T[] = [];
    const current = Math.floor(now / this.resolutionMs);
    if (current < this.cursor) return due; // the clock went back: nothing new is due
    const take = (slot: number): void => {
      const set = this.buckets.get(slot);
      if (!set) return;
      for (const item of set) {
        const at = this.expiry.get(item)!;
        if (at > now) continue; // the current bucket: later this second
        set.delete(item);
        this.expiry.delete(item);
        due.push(item);
      }
      if (set.size === 0) this.buckets.delete(slot);
    };
    if (current - this.cursor > this.buckets.size) {
      // Far behind (a long stall or a clock jump): fewer buckets than seconds to walk.
      for (const slot of [...this.buckets.keys()].sort((a, b) => a - b)) if (slot <= current) take(slot);
    } else {
      for (let slot = this.cursor; slot <= current; slot++) take(slot);
    }
    // Items left in buckets below `current` cannot exist; those of `current` stay there.
    this.cursor = current;
    return due;
  }

  clear(): void {
    this.buckets.clear();
    this.expiry.clear();
  }
}
