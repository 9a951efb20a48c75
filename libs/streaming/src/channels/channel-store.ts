import type { ChannelRecord, WireChannel, ChannelStore } from '../interfaces';
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
