/** Test kit of the channel service specs: in-memory transports, a two-node hub, a node factory. */
import { LocalBackend } from '../backends/local/local.backend';
import { defaultStreamingOptions } from '../config/streaming-defaults';
import { StreamingOptions } from '../config/streaming-options.interface';
import { Connection, ConnectionTransport, FlushScheduler } from '../connections/connection';
import { ConnectionRegistry } from '../connections/connection-registry';
import { StreamingError } from '../protocol/streaming-error';
import { ChannelMessageEvent, ChannelService } from './channel.service';
import { StreamingBackend, TopicHandler } from '../interfaces';
import type { ChannelAuthorizer } from '../interfaces';
import { TopicTable } from '../connections/topic-table';
import { StreamingHub } from '../connections/hub';

/** A transport that keeps what is written to it. */
export class MemoryTransport implements ConnectionTransport {
  readonly kind = 'ws' as const;
  readonly frames: string[] = [];
  closedWith: number | null = null;
  write(frames: readonly string[]): void {
    this.frames.push(...frames);
  }
  bufferedAmount(): number {
    return 0;
  }
  close(code: number): void {
    this.closedWith = code;
  }
}

/** Flushing is driven by the test (`received`). */
export const manualScheduler: FlushScheduler = {
  markDirty: () => undefined,
  turn: 0,
  touch: () => undefined,
  watch: () => undefined,
  afterFlush: (fn: () => void) => fn(),
};

export interface Envelope {
  type: string;
  data: ChannelMessageEvent;
}

/** A pub/sub hub shared by several backends: several nodes in one process. */
export class Hub {
  readonly subs = new Map<string, Map<HubBackend, TopicHandler>>();
  readonly published: Array<{ topic: string; payload: string }> = [];
  publish(topic: string, payload: string): void {
    this.published.push({ topic, payload });
    for (const h of [...(this.subs.get(topic)?.values() ?? [])]) h(payload, topic);
  }
}

export class HubBackend extends LocalBackend {
  constructor(private readonly hub: Hub) {
    super();
  }
  override async publish(topic: string, payload: string): Promise<void> {
    this.hub.publish(topic, payload);
  }
  override async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    let m = this.hub.subs.get(topic);
    if (!m) this.hub.subs.set(topic, (m = new Map<HubBackend, TopicHandler>()));
    m.set(this, handler);
  }
  override async unsubscribe(topic: string): Promise<void> {
    this.hub.subs.get(topic)?.delete(this);
  }
  topics(): string[] {
    return [...this.hub.subs.entries()].filter(([, m]) => m.has(this)).map(([t]) => t);
  }
}

export function node(
  opts: Partial<StreamingOptions> = {},
  deps: { backend?: StreamingBackend; authorizer?: ChannelAuthorizer } = {},
) {
  const options: StreamingOptions = { ...defaultStreamingOptions(), ...opts };
  const backend = deps.backend ?? new LocalBackend();
  const registry = new ConnectionRegistry();
  const service = new ChannelService(
    backend,
    backend,
    new StreamingHub(new TopicTable(backend)),
    options,
    registry,
    undefined,
    deps.authorizer,
  );
  let n = 0;
  const connect = (userId: string) => {
    const transport = new MemoryTransport();
    const conn = new Connection(
      `${userId}-${++n}`,
      { userId, sessionId: `s-${n}`, roles: [], anonymous: false, metadata: {} },
      transport,
      manualScheduler,
      { budgetBytes: 1 << 20, hardCapBytes: 4 << 20, writeTimeoutMs: 10_000 },
      () => undefined,
    );
    registry.add(conn);
    /** Envelopes delivered to this connection since the last call. */
    const received = (): Envelope[] => {
      conn.flush(Number.MAX_SAFE_INTEGER);
      return transport.frames.splice(0).map((f) => JSON.parse(f) as Envelope);
    };
    return { conn, transport, received };
  };
  return { service, backend, registry, options, connect };
}

export const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof StreamingError) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
};

export const channelsOf = (envs: Envelope[]): string[] => envs.map((e) => e.data.channel);
