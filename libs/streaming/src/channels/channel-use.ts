import { StreamingLogger } from '../common/streaming-logger';
import type { ChannelActor, ChannelAuthorizer, ChannelRecord, PresenceStore } from '../interfaces';
import { StreamingError } from '../protocol/streaming-error';
import { channelOwner } from './channel-bus';
import { channelToWire } from './channel-store';

/** How long an exact subscription or a publish keeps a name "in use" by its user (renewed while it lasts). */
const CHANNEL_USE_TTL_MS = 60 * 60_000;
/** Users remembered per name: two are enough to tell whether anyone other than a given user uses it. */
const CHANNEL_USERS_KEPT = 2;
/** Uses this node remembers having recorded (so a busy publisher writes its use once per quarter TTL). */
const MAX_RECORDED_USES = 10_000;
/** The member that stands for the server in a channel's users. */
export const SERVER_USE = '';
const channelUseKey = (name: string): string => `chanuse:${name}`;

/**
 * The squatting guard of private channels: who subscribed to a channel name
 * (exactly) or published on it within the last hour, on any node, kept as an
 * expiring set per name in the {@link PresenceStore}. A user may register a
 * private channel only on a name no one else uses (or as the app's
 * `authorizeCreate` decides), since the name's other subscribers would stop
 * receiving it.
 */
export class ChannelUseTracker {
  private readonly logger = new StreamingLogger('streaming.channels');
  /** `<name>\0<user>` -> when this node last recorded that use in the backend. */
  private readonly recorded = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: PresenceStore,
    private readonly authorizer: ChannelAuthorizer,
    /** The exact names subscribed on this node, with their users: renewed while held. */
    private readonly held: () => Iterable<[name: string, userId: string]>,
  ) {}

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Throws `forbidden` unless `creator` may register `record` (a private channel). */
  async requireMayMakePrivate(creator: ChannelActor, record: ChannelRecord): Promise<void> {
    let users: string[];
    try {
      users = await this.store.listExpiring(channelUseKey(record.name));
    } catch {
      throw new StreamingError('backend_unavailable', 'could not check who uses the channel');
    }
    const usedByOthers = users.some((u) => u !== creator.userId);
    const wire = channelToWire(record);
    const allowed = this.authorizer.authorizeCreate
      ? await this.authorizer.authorizeCreate(creator, wire, { usedByOthers })
      : !usedByOthers;
    if (!allowed) {
      throw new StreamingError(
        'forbidden',
        usedByOthers
          ? `channel ${record.name} is in use by others: it cannot be made private`
          : `you may not create the private channel ${record.name}`,
      );
    }
  }

  /** An exact subscription of `userId` to `name` was made on this node. */
  async subscribed(name: string, userId: string): Promise<void> {
    await this.record(name, userId);
    if (this.timer) return;
    this.timer = setInterval(() => void this.renew(), CHANNEL_USE_TTL_MS / 4);
    this.timer.unref();
  }

  /** `userId` (or the server, {@link SERVER_USE}) published on `name`. */
  published(name: string, userId: string): Promise<void> {
    return this.record(name, userId);
  }

  /**
   * Note the use in the backend, at most once per quarter of the use TTL per
   * node. Names in a `user.<id>` namespace are skipped (only their owner can use them).
   */
  private async record(name: string, userId: string, force = false): Promise<void> {
    if (channelOwner(name) !== undefined) return;
    const key = `${name}\u0000${userId}`;
    const now = Date.now();
    const last = this.recorded.get(key);
    if (!force && last !== undefined && now - last < CHANNEL_USE_TTL_MS / 4) return;
    this.recorded.delete(key);
    this.recorded.set(key, now);
    if (this.recorded.size > MAX_RECORDED_USES) {
      this.recorded.delete(this.recorded.keys().next().value as string);
    }
    try {
      await this.store.touchExpiring(channelUseKey(name), userId, CHANNEL_USE_TTL_MS, CHANNEL_USERS_KEPT);
    } catch (err) {
      this.recorded.delete(key);
      this.logger.warn(`could not record the use of channel ${name}: ${String(err)}`);
    }
  }

  /** Exact subscriptions held here stay "in use": two users per name at most. */
  private async renew(): Promise<void> {
    const users = new Map<string, Set<string>>();
    for (const [name, userId] of this.held()) {
      const set = users.get(name) ?? new Set<string>();
      if (set.size < CHANNEL_USERS_KEPT) set.add(userId);
      users.set(name, set);
    }
    for (const [name, set] of users) for (const u of set) await this.record(name, u, true);
  }
}
