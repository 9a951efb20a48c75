import type { ChannelFilters } from '@nest-streaming/protocol';
import type { ClientEmitter } from './events';
import { errorOf, type SendInternal } from './util';

/** The client's channel subscriptions (pattern -> filters), restored after every reconnect. */
export class ChannelSubscriptions {
  private readonly subs = new Map<string, ChannelFilters | undefined>();

  /** Every subscription: pattern -> filters. */
  get all(): ReadonlyMap<string, ChannelFilters | undefined> {
    return this.subs;
  }

  get size(): number {
    return this.subs.size;
  }

  /** A `subscribe` the server acked: restored after every reconnect. */
  remember(channel: string, filters: ChannelFilters | undefined): void {
    this.subs.set(channel, filters);
  }

  /** An `unsubscribe`: no longer restored. */
  forget(channel: string): void {
    this.subs.delete(channel);
  }

  /**
   * After a reconnect: send `subscribe` again for every channel (at once, before this returns).
   * A refusal is reported through `error` unless the connection dropped (`live()` false or
   * `disconnected`). The promises never reject.
   */
  restore(send: SendInternal, live: () => boolean, emitter: ClientEmitter): Promise<void>[] {
    return [...this.subs].map(async ([channel, filters]) => {
      try {
        await send('subscribe', filters === undefined ? { channel } : { channel, filters });
      } catch (err) {
        const e = errorOf(err);
        if (e.code === 'disconnected' || !live()) return;
        emitter.emit('error', {
          ...e.data,
          code: e.code,
          message: `re-subscribing to ${channel} failed: ${e.message}`,
          channel,
        });
      }
    });
  }
}
