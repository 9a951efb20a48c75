import { Injectable, Optional } from '@nestjs/common';
import type { TopicHandler } from '../interfaces';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { msgpack } from '../protocol/msgpack';
import type { Connection } from './connection';
import { TopicTable } from './topic-table';

/** Writes the envelope being delivered to one connection; true when it was written or queued. */
export type HubSend = (conn: Connection) => boolean;

/**
 * This node's hub: every local subscription (room, user, channel) holds a
 * backend topic through one reference-counted, per-topic-serialized
 * {@link TopicTable}, and every delivery to local connections goes through
 * one loop, {@link deliver}. What differs per kind is only which connections
 * a payload selects: the room and user indexes of the registry, or the
 * channel trie for names and patterns.
 */
@Injectable()
export class StreamingHub {
  constructor(
    private readonly table: TopicTable,
    @Optional() private readonly metrics?: StreamingMetricsService,
  ) {}

  /** Hold `topic` (`delta` references; 0 waits for changes in flight); see {@link TopicTable.retain}. */
  retain(topic: string, handler: TopicHandler, delta = 1): Promise<void> {
    return this.table.retain(topic, handler, delta);
  }

  /** Drop one reference to each topic; never throws. */
  release(...topics: string[]): Promise<void> {
    return this.table.release(...topics);
  }

  /** Topics held at the broker now, optionally only those starting with `prefix`. */
  held(prefix = ''): string[] {
    return this.table.held(prefix);
  }

  /**
   * The one delivery loop: `select` calls `send` for each local connection
   * that should receive `envelope`. The envelope was serialized once by its
   * publisher; its byte length is measured once, at the first JSON receiver,
   * and the same string is queued to every JSON connection. The first
   * MessagePack receiver, if any, has it encoded once (see `msgpack.fromJson`),
   * and the same bytes are queued to every MessagePack connection: one encode
   * per broadcast per codec, none when nobody uses MessagePack. Returns how
   * many took it.
   */
  deliver(envelope: string, select: (send: HubSend) => void): number {
    let bytes = -1;
    let packed: Buffer | null | undefined; // undefined until a MessagePack receiver needs it; null: not encodable
    let n = 0;
    select((conn) => {
      if (conn.codec === 'json') {
        if (bytes < 0) bytes = Buffer.byteLength(envelope);
        if (!conn.send(envelope, bytes)) return false;
      } else {
        if (packed === undefined) packed = packOnce(envelope);
        if (packed === null || !conn.send(packed, packed.length)) return false;
      }
      n++;
      return true;
    });
    if (n > 0) this.metrics?.messagesOut.inc(n);
    return n;
  }
}

/** The MessagePack bytes of a broadcast, or null when its JSON does not parse (a corrupt bus payload). */
function packOnce(envelope: string): Buffer | null {
  try {
    return msgpack.fromJson(envelope);
  } catch {
    return null;
  }
}
