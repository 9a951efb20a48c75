import { WireChannel } from './channel-store';

/** Who asks: a connection's identity fits, and so does `{ userId }` from server code or REST. */
export interface ChannelActor {
  userId: string;
  roles?: readonly string[];
  metadata?: Record<string, unknown>;
}

/** What the actor wants to do with the channel. */
export type ChannelAction = 'subscribe' | 'publish';

/**
 * Authorization hook for private channels. Consulted when a user subscribes
 * to a private channel by its exact name, or publishes to one. Not consulted
 * for public channels, nor for the server (publisher `null`). Answer false to
 * refuse (the request fails with `forbidden`).
 */
export interface ChannelAuthorizer {
  authorize(actor: ChannelActor, channel: WireChannel, action: ChannelAction): boolean | Promise<boolean>;
  /**
   * Optional: may `actor` register `channel` as private? `usedByOthers` is
   * true when another user (or the server) subscribed to the name or published
   * on it within the last hour, on any node: making it private would cut them
   * off. Without this method, such names are refused and others allowed.
   * Answer false to refuse (`forbidden`).
   */
  authorizeCreate?(
    actor: ChannelActor,
    channel: WireChannel,
    context: { usedByOthers: boolean },
  ): boolean | Promise<boolean>;
}

/** The default: only the creator of a private channel may subscribe or publish to it. */
export class CreatorOnlyChannelAuthorizer implements ChannelAuthorizer {
  authorize(actor: ChannelActor, channel: WireChannel): boolean {
    return channel.created_by !== null && channel.created_by === actor.userId;
  }
}
