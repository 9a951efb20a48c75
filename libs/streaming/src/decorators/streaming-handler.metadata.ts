import type { StreamingEventMap } from '../events/streaming-events';

/**
 * Reflect-metadata key under which the handler decorators (`@SubscribeRoom`,
 * `@OnChannel`, `@OnPresence`, `@OnTyping`, `@OnConnect`, `@OnDisconnect`)
 * store a {@link StreamingHandlerMetadata} array on the decorated method.
 */
export const STREAMING_HANDLER_METADATA = 'nest-streaming:handler';

/** An event a handler decorator listens to (a key of {@link StreamingEventMap}). */
export type StreamingHandlerEvent = keyof StreamingEventMap;

/** What one handler decorator records on a method (a method may carry several). */
export interface StreamingHandlerMetadata {
  event: StreamingHandlerEvent;
  /**
   * `room_message`: a room id glob (see {@link roomPatternMatches});
   * `channel_message`: a NATS-style channel pattern; absent for other events.
   */
  pattern?: string;
}

/**
 * The type of a handler decorator: it only accepts methods whose first
 * parameter takes `E` (or methods without parameters), so a handler typed for
 * the wrong event fails to compile.
 */
export type StreamingHandlerDecorator<E> = <T extends (event: E) => unknown>(
  target: object,
  propertyKey: string | symbol,
  descriptor: TypedPropertyDescriptor<T>,
) => void;

/** The handler metadata of a method, in source order (empty when it has none). */
export function getStreamingHandlerMetadata(method: unknown): StreamingHandlerMetadata[] {
  if (typeof method !== 'function') return [];
  const found: unknown = Reflect.getOwnMetadata(STREAMING_HANDLER_METADATA, method);
  return Array.isArray(found) ? (found as StreamingHandlerMetadata[]) : [];
}

/** Build a method decorator that adds `metadata` to the method's list (several decorators may stack). */
export function streamingHandler<E>(metadata: StreamingHandlerMetadata): StreamingHandlerDecorator<E> {
  return (target, propertyKey, descriptor) => {
    const method = descriptor.value;
    if (typeof method !== 'function') {
      const owner = (target as { constructor?: { name?: string } }).constructor?.name ?? 'a class';
      throw new TypeError(
        `${owner}.${String(propertyKey)}: streaming handler decorators apply to methods only`,
      );
    }
    // Decorators run bottom-up: prepend so the list reads in source order.
    const list = [{ ...metadata }, ...getStreamingHandlerMetadata(method)];
    Reflect.defineMetadata(STREAMING_HANDLER_METADATA, list, method);
  };
}

/**
 * Does the room id glob `pattern` match `roomId`? `*` stands for any run of
 * characters (including none); every other character matches itself, so a
 * pattern without `*` is an exact room id. `'*'` matches every room.
 */
export function roomPatternMatches(pattern: string, roomId: string): boolean {
  return compileRoomPattern(pattern)(roomId);
}

/** Why `pattern` is not a valid room id glob, or null when it is. */
export function validateRoomPattern(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'the room pattern must be a string';
  if (pattern.length === 0) return 'the room pattern must not be empty (use "*" for every room)';
  return null;
}

/** Compile a room id glob into a predicate (once per handler, not per message). */
export function compileRoomPattern(pattern: string): (roomId: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (roomId) => roomId === pattern;
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const re = new RegExp(`^${source}$`, 's');
  return (roomId) => re.test(roomId);
}
