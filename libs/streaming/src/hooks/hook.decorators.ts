import type { StreamingHookKind, StreamingHookMap } from './hook.types';

/** Reflect-metadata key of the hook decorators: the hook kinds of a method. */
export const STREAMING_HOOK_METADATA = 'nest-streaming:hook';

/** A hook decorator: accepts only methods taking the hook's context. */
export type StreamingHookDecorator<K extends StreamingHookKind> = <
  T extends (
    context: StreamingHookMap[K]['context'],
  ) => StreamingHookMap[K]['result'] | void | Promise<StreamingHookMap[K]['result'] | void>,
>(
  target: object,
  propertyKey: string | symbol,
  descriptor: TypedPropertyDescriptor<T>,
) => void;

/** The hook kinds recorded on a method. */
export function getStreamingHookMetadata(method: unknown): StreamingHookKind[] {
  if (typeof method !== 'function') return [];
  const found: unknown = Reflect.getOwnMetadata(STREAMING_HOOK_METADATA, method);
  return Array.isArray(found) ? (found as StreamingHookKind[]) : [];
}

function hook<K extends StreamingHookKind>(kind: K): StreamingHookDecorator<K> {
  return (target, propertyKey, descriptor) => {
    if (typeof descriptor.value !== 'function') {
      const owner = (target as { constructor?: { name?: string } }).constructor?.name ?? 'a class';
      throw new TypeError(`${owner}.${String(propertyKey)}: streaming hook decorators apply to methods only`);
    }
    const kinds = getStreamingHookMetadata(descriptor.value);
    if (!kinds.includes(kind))
      Reflect.defineMetadata(STREAMING_HOOK_METADATA, [...kinds, kind], descriptor.value);
  };
}

/**
 * Runs before a connection is accepted (after its token). Return
 * `{name?, roles?, metadata?}` to change the identity; throw a
 * `StreamingError` to refuse (the upgrade is answered with its HTTP status).
 */
export const BeforeConnect = (): StreamingHookDecorator<'connect'> => hook('connect');

/** Runs before a join; throw a `StreamingError` to refuse it. */
export const BeforeJoin = (): StreamingHookDecorator<'join'> => hook('join');

/** Runs before a channel subscription; may return `{filters}`; throw to refuse. */
export const BeforeSubscribe = (): StreamingHookDecorator<'subscribe'> => hook('subscribe');

/** Runs before a channel publish; may return `{data?, metadata?}`; throw to refuse. */
export const BeforePublish = (): StreamingHookDecorator<'publish'> => hook('publish');

/**
 * Runs before a room message is stored; may return `{content?, metadata?}`
 * (the message to store); throw a `StreamingError` to refuse it.
 */
export const BeforeSendMessage = (): StreamingHookDecorator<'send_message'> => hook('send_message');
