import { StreamingLogger } from '../common/streaming-logger';
import {
  Injectable,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  Optional,
  type Type,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { patternMatches } from '../channels/channel-trie';
import { StreamingEventMap, StreamingEvents } from '../events/streaming-events';
import {
  STREAMING_HANDLER_METADATA,
  StreamingHandlerEvent,
  StreamingHandlerMetadata,
  compileRoomPattern,
} from './streaming-handler.metadata';
import { getStreamingHookMetadata } from '../hooks/hook.decorators';
import { StreamingHooks } from '../hooks/streaming-hooks.service';

/** A provider or controller as DiscoveryService lists it (no deep import of Nest's InstanceWrapper). */
type DiscoveredClass = ReturnType<DiscoveryService['getProviders']>[number];

type AnyEvent = StreamingEventMap[StreamingHandlerEvent];

/** The decorator name of each event, for log lines. */
const DECORATOR_OF: Record<StreamingHandlerEvent, string> = {
  room_message: '@SubscribeRoom',
  channel_message: '@OnChannel',
  presence: '@OnPresence',
  typing: '@OnTyping',
  connect: '@OnConnect',
  disconnect: '@OnDisconnect',
  moderation: '@OnModeration',
};

/**
 * Finds the methods decorated with `@SubscribeRoom`, `@OnChannel`,
 * `@OnPresence`, `@OnTyping`, `@OnConnect` and `@OnDisconnect` on every
 * singleton provider and controller of the app (DiscoveryService +
 * MetadataScanner + Reflector, at application bootstrap) and registers them on
 * {@link StreamingEvents}; unregisters them at application shutdown.
 *
 * One listener per method and event: a method decorated twice for the same
 * event (two room patterns, say) runs once per event when any pattern
 * matches. The handler is called on its instance with the event; async
 * handlers are awaited; a throw or rejection is logged with the class and
 * method name and affects nothing else (other handlers, later events, the
 * request that caused the event). Request-scoped and transient classes are
 * skipped with a warning: there is no request or consumer to resolve them for.
 *
 * Provided by `StreamingModule` (which imports `DiscoveryModule`).
 */
@Injectable()
export class StreamingHandlersExplorer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new StreamingLogger('streaming.handlers');
  private unsubscribes: Array<() => void> | null = null;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly events: StreamingEvents,
    @Optional() private readonly hooks?: StreamingHooks,
  ) {}

  /** Number of (method, event) listeners currently registered. */
  get registeredCount(): number {
    return this.unsubscribes?.length ?? 0;
  }

  onApplicationBootstrap(): void {
    if (this.unsubscribes) return;
    this.unsubscribes = [];
    const seen = new Set<object>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      this.explore(wrapper, seen);
    }
  }

  onApplicationShutdown(): void {
    const registered = this.unsubscribes ?? [];
    this.unsubscribes = null;
    for (const unsubscribe of registered) unsubscribe();
  }

  private explore(wrapper: DiscoveredClass, seen: Set<object>): void {
    if (wrapper.isAlias) return;
    const instance: unknown = wrapper.instance;
    if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
      this.warnIfDecorated(wrapper);
      return;
    }
    if (!instance || typeof instance !== 'object' || seen.has(instance)) return;
    seen.add(instance);
    const prototype = Object.getPrototypeOf(instance) as object | null;
    const className = instance.constructor?.name ?? String(wrapper.name);
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method: unknown = (instance as Record<string, unknown>)[methodName];
      for (const kind of getStreamingHookMetadata(method)) {
        if (!this.hooks) break;
        const label = `${className}.${methodName}`;
        const fn = (method as (context: unknown) => undefined).bind(instance);
        this.unsubscribes!.push(this.hooks.register(kind, fn, label));
        this.logger.debug(`hook ${kind} → ${label}`);
      }
      const metadata = this.metadataOf(method);
      if (metadata.length === 0) continue;
      for (const [event, patterns] of groupByEvent(metadata)) {
        this.register(
          instance,
          method as (event: AnyEvent) => unknown,
          `${className}.${methodName}`,
          event,
          patterns,
        );
      }
    }
  }

  private register(
    instance: object,
    method: (event: AnyEvent) => unknown,
    label: string,
    event: StreamingHandlerEvent,
    patterns: string[],
  ): void {
    const matches = matcherFor(event, patterns);
    const listener = async (payload: AnyEvent): Promise<void> => {
      try {
        if (matches && !matches(payload)) return;
        await method.call(instance, payload);
      } catch (err) {
        this.logger.error(
          `${DECORATOR_OF[event]} handler ${label} failed: ${err instanceof Error ? err.message : String(err)}`,
          err instanceof Error ? err.stack : undefined,
        );
      }
    };
    this.unsubscribes!.push(this.events.on(event, listener));
    const on = patterns.length > 0 ? ` (${patterns.join(', ')})` : '';
    this.logger.debug(`${DECORATOR_OF[event]}${on} → ${label}`);
  }

  private metadataOf(method: unknown): StreamingHandlerMetadata[] {
    if (typeof method !== 'function') return [];
    const found = this.reflector.get<StreamingHandlerMetadata[] | undefined>(
      STREAMING_HANDLER_METADATA,
      method,
    );
    return Array.isArray(found) ? found : [];
  }

  private warnIfDecorated(wrapper: DiscoveredClass): void {
    const metatype = wrapper.metatype;
    const prototype: unknown =
      !wrapper.isNotMetatype && typeof metatype === 'function'
        ? (metatype as Type<unknown>).prototype
        : undefined;
    if (!prototype || typeof prototype !== 'object') return;
    const decorated = this.scanner.getAllMethodNames(prototype).some((name) => {
      const method = (prototype as Record<string, unknown>)[name];
      return this.metadataOf(method).length > 0 || getStreamingHookMetadata(method).length > 0;
    });
    if (!decorated) return;
    const scope = wrapper.isTransient ? 'transient' : 'request-scoped';
    this.logger.warn(
      `${(metatype as Type<unknown>).name} is ${scope}: its streaming handlers are ignored (handlers need a singleton provider or controller)`,
    );
  }
}

/** Patterns per event, in source order (an empty list: the event has no pattern). */
function groupByEvent(metadata: StreamingHandlerMetadata[]): Map<StreamingHandlerEvent, string[]> {
  const out = new Map<StreamingHandlerEvent, string[]>();
  for (const m of metadata) {
    let patterns = out.get(m.event);
    if (!patterns) out.set(m.event, (patterns = []));
    if (m.pattern !== undefined && !patterns.includes(m.pattern)) patterns.push(m.pattern);
  }
  return out;
}

/** The filter of a listener, or null when every event of its kind matches. */
function matcherFor(
  event: StreamingHandlerEvent,
  patterns: string[],
): ((payload: AnyEvent) => boolean) | null {
  if (event === 'room_message') {
    if (patterns.includes('*')) return null;
    const tests = patterns.map(compileRoomPattern);
    return (payload) => {
      const roomId = (payload as StreamingEventMap['room_message']).roomId;
      return tests.some((t) => t(roomId));
    };
  }
  if (event === 'channel_message') {
    if (patterns.includes('>')) return null;
    return (payload) => {
      const channel = (payload as StreamingEventMap['channel_message']).channel;
      return patterns.some((p) => patternMatches(p, channel));
    };
  }
  return null;
}
