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

export function channelToWire(c: ChannelRecord): WireChannel {
  const w: WireChannel = {
    name: c.name,
    private: c.private,
    created_by: c.createdBy,
    created_at: c.createdAt,
  };
  if (c.description !== undefined) w.description = c.description;
  return w;
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

/** The default store: a Map in this process (copies in and out, like the local backend). */
export class InMemoryChannelStore implements ChannelStore {
  private readonly channels = new Map<string, ChannelRecord>();

  async create(record: ChannelRecord): Promise<boolean> {
    if (this.channels.has(record.name)) return false;
    this.channels.set(record.name, { ...record });
    return true;
  }

  async get(name: string): Promise<ChannelRecord | null> {
    const c = this.channels.get(name);
    return c ? { ...c } : null;
  }

  async list(): Promise<ChannelRecord[]> {
    return [...this.channels.values()].map((c) => ({ ...c }));
  }

  async delete(name: string): Promise<boolean> {
    return this.channels.delete(name);
  }

  async count(): Promise<number> {
    return this.channels.size;
  }
}
