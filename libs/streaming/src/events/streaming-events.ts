import { StreamingLogger } from '../common/streaming-logger';
import { Injectable } from '@nestjs/common';
import type { WireMessage, WirePresence } from '../protocol/wire';
import type { ConnectionIdentity, ModerationLogEntry } from '../interfaces';

/** A chat message accepted in a room (fired on the node that accepted it). */
export interface RoomMessageEvent {
  roomId: string;
  message: WireMessage;
}

/** A message published on a channel (fired on the node that accepted it). */
export interface ChannelMessageEventPayload {
  channel: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  publisherId: string | null;
  timestamp: string;
}

/** A presence change of a user (fired on the node that made the change). */
export interface PresenceEvent {
  userId: string;
  presence: WirePresence;
}

/** A typing change in a room. */
export interface TypingEvent {
  roomId: string;
  userId: string;
  typing: boolean;
}

/** A connection opened or closed on this node. */
export interface ConnectionEvent {
  connectionId: string;
  userId: string;
  identity: ConnectionIdentity;
  transport: 'ws' | 'sse';
}

/** A moderation action taken in a room (fired on the node that took it; as stored in the room's log). */
export interface ModerationEvent {
  roomId: string;
  entry: ModerationLogEntry;
}

/** Every event the handler decorators can listen to. */
export interface StreamingEventMap {
  room_message: RoomMessageEvent;
  channel_message: ChannelMessageEventPayload;
  presence: PresenceEvent;
  typing: TypingEvent;
  connect: ConnectionEvent;
  disconnect: ConnectionEvent;
  moderation: ModerationEvent;
}

type Listener<K extends keyof StreamingEventMap> = (event: StreamingEventMap[K]) => unknown;

/**
 * In-process hub of server-side events: services emit, handler decorators
 * (`@SubscribeRoom`, `@OnPresence`, ...) listen. Listeners run after the
 * emitting request carried on (a later event-loop turn), may be async, and their errors
 * are logged and harm nothing else.
 */
@Injectable()
export class StreamingEvents {
  private readonly logger = new StreamingLogger('streaming.events');
  private readonly listeners = new Map<keyof StreamingEventMap, Set<Listener<never>>>();

  /** Listen to an event; returns a function that stops listening. */
  on<K extends keyof StreamingEventMap>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** True when someone listens (emitters skip building payloads otherwise). */
  has(event: keyof StreamingEventMap): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<K extends keyof StreamingEventMap>(event: K, payload: StreamingEventMap[K]): void {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of set) {
      setImmediate(() => {
        if (!set.has(listener)) return; // unregistered meanwhile (e.g. shutdown)
        try {
          const r = (listener as Listener<K>)(payload);
          if (r instanceof Promise) r.catch((err: unknown) => this.fail(event, err));
        } catch (err) {
          this.fail(event, err);
        }
      });
    }
  }

  private fail(event: string, err: unknown): void {
    this.logger.error(
      `${event} handler failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  }
}
