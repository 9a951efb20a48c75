/** A registered channel, as stored. */
export interface ChannelRecord {
  /** The channel name (no wildcards); the registry key. */
  name: string;
  /** Private channels need {@link ChannelAuthorizer} approval to subscribe or publish. */
  private: boolean;
  /** User id of the creator, or null when the server created it. */
  createdBy: string | null;
  /** ISO 8601 UTC. Also tells two incarnations of the same name apart. */
  createdAt: string;
  description?: string;
}

/** A channel as clients and server code see it. */
export interface WireChannel {
  name: string;
  private: boolean;
  created_by: string | null;
  created_at: string;
  description?: string;
}

/**
 * Where the channel registry lives. The bundled {@link InMemoryChannelStore}
 * keeps it in this process; a backend-backed store (Redis hash, NATS KV) can
 * implement the same contract to share it between nodes.
 */
export interface ChannelStore {
  /** Stores the channel; resolves false (and changes nothing) when the name exists. */
  create(record: ChannelRecord): Promise<boolean>;
  get(name: string): Promise<ChannelRecord | null>;
  list(): Promise<ChannelRecord[]>;
  delete(name: string): Promise<boolean>;
  count(): Promise<number>;
}

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
