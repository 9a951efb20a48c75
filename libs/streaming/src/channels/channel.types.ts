/** What the channel service takes and answers (the acks of PROTOCOL.md section 4). */

/** `data` of a `channel_message` event (PROTOCOL.md section 4). */
export interface ChannelMessageEvent {
  channel: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  /** The publishing user, or null when the server published. */
  publisher_id: string | null;
  timestamp: string;
}

/** Fields of a new channel. */
export interface CreateChannelInput {
  name: string;
  private?: boolean;
  description?: string;
}

/** Ack of `subscribe`. */
export interface SubscribeResult {
  /** The pattern, as subscribed. */
  channel: string;
}

/** Ack of `unsubscribe`. */
export interface UnsubscribeResult {
  channel: string;
  /** False when the connection was not subscribed to that pattern (unsubscribe is idempotent). */
  removed: boolean;
}

/** Ack of `publish`. */
export interface PublishResult {
  channel: string;
  /** The message's server-assigned timestamp. */
  timestamp: string;
}

/** Channel figures for the stats endpoint. */
export interface ChannelStats {
  /** Registered channels plus the distinct names/patterns subscribed on this node. */
  total_channels: number;
  /** Distinct patterns with a subscriber on this node. */
  channel_patterns: number;
  /** (connection, pattern) subscriptions on this node. */
  channel_subscriptions: number;
}
