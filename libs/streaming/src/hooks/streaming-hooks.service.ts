import { StreamingLogger } from '../common/streaming-logger';
import { Inject, Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import type { ConnectionIdentity, ContentFilter } from '../interfaces';
import { StreamingError } from '../protocol/streaming-error';
import { ContentFilterChain } from '../security/content-filter';
import { InjectStreamingOptions, STREAMING_CONTENT_FILTERS } from '../streaming.constants';
import type {
  ConnectHookContext,
  JoinHookContext,
  PublishHookContext,
  SendMessageHookContext,
  StreamingHookFn,
  StreamingHookKind,
  SubscribeHookContext,
} from './hook.types';

/** Rejection of a hook past its time (an Error, so nothing else is mistaken for it). */
class HookTimeout extends Error {}

interface Registered {
  fn: (context: unknown) => unknown;
  label: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The app's hooks (`@BeforeConnect`, `@BeforeJoin`, `@BeforeSubscribe`,
 * `@BeforePublish`, `@BeforeSendMessage`) and the content filters, run in
 * the order of a request: auth, rate limit, validation, hooks (in
 * registration order, each seeing the previous one's rewrite), content
 * filters, then the store and delivery.
 *
 * A hook allows by returning nothing, rewrites by returning the fields it
 * changes, and refuses by throwing a `StreamingError` (its code and message
 * reach the client). Anything else it throws, or a hook that has not settled
 * after `hookTimeout` seconds, fails the request with `internal` (logged);
 * the connection goes on. A kind without hooks costs nothing.
 */
@Injectable()
export class StreamingHooks {
  private readonly logger = new StreamingLogger('streaming.hooks');
  private readonly hooks: Record<StreamingHookKind, Registered[]> = {
    connect: [],
    join: [],
    subscribe: [],
    publish: [],
    send_message: [],
  };
  private readonly timeoutMs: number;
  private readonly filters: ContentFilterChain;

  constructor(
    @InjectStreamingOptions() options: StreamingOptions,
    @Inject(STREAMING_CONTENT_FILTERS) filters: ContentFilter[],
  ) {
    this.timeoutMs = options.hookTimeout * 1000;
    this.filters = new ContentFilterChain(filters);
  }

  /** Add a hook (after those already registered); returns its removal. */
  register<K extends StreamingHookKind>(
    kind: K,
    fn: StreamingHookFn<K>,
    label = fn.name || 'hook',
  ): () => void {
    const entry: Registered = { fn: fn as (context: unknown) => unknown, label };
    this.hooks[kind].push(entry);
    return () => {
      const i = this.hooks[kind].indexOf(entry);
      if (i !== -1) this.hooks[kind].splice(i, 1);
    };
  }

  /** Hooks registered for a kind. */
  count(kind: StreamingHookKind): number {
    return this.hooks[kind].length;
  }

  /** The identity a connection is admitted with. */
  async connect(context: ConnectHookContext): Promise<ConnectionIdentity> {
    let identity = context.identity;
    for (const h of this.hooks.connect) {
      const out = await this.call(h, { ...context, identity });
      if (out === undefined || out === null) continue;
      const ok =
        isObject(out) &&
        (out.name === undefined || typeof out.name === 'string') &&
        (out.roles === undefined ||
          (Array.isArray(out.roles) && out.roles.every((r) => typeof r === 'string'))) &&
        (out.metadata === undefined || isObject(out.metadata));
      if (!ok) throw this.invalid(h, 'connect', '{name?, roles?, metadata?}');
      identity = {
        ...identity,
        ...(out.name !== undefined ? { name: out.name as string } : {}),
        ...(out.roles !== undefined ? { roles: [...(out.roles as string[])] } : {}),
        ...(out.metadata !== undefined ? { metadata: out.metadata as Record<string, unknown> } : {}),
      };
    }
    return identity;
  }

  /** Allows or refuses a join. */
  async join(context: JoinHookContext): Promise<void> {
    for (const h of this.hooks.join) await this.call(h, context);
  }

  /** The filters to subscribe with. */
  async subscribe(context: SubscribeHookContext): Promise<Record<string, unknown> | undefined> {
    let filters = context.filters;
    for (const h of this.hooks.subscribe) {
      const out = await this.call(h, { ...context, filters });
      if (out === undefined || out === null) continue;
      if (!isObject(out) || (out.filters !== undefined && !isObject(out.filters))) {
        throw this.invalid(h, 'subscribe', '{filters?}');
      }
      if (out.filters !== undefined) filters = out.filters;
    }
    return filters;
  }

  /** The data and metadata to publish (hooks, then the content filters). */
  async publish(
    context: PublishHookContext,
  ): Promise<{ data: Record<string, unknown>; metadata?: Record<string, unknown> }> {
    let { data, metadata } = context;
    for (const h of this.hooks.publish) {
      const out = await this.call(h, { ...context, data, metadata });
      if (out === undefined || out === null) continue;
      if (
        !isObject(out) ||
        (out.data !== undefined && !isObject(out.data)) ||
        (out.metadata !== undefined && !isObject(out.metadata))
      ) {
        throw this.invalid(h, 'publish', '{data?, metadata?}');
      }
      if (out.data !== undefined) data = out.data;
      if (out.metadata !== undefined) metadata = out.metadata;
    }
    return this.filters.filterPublication(
      { userId: context.identity.userId, type: 'publish', channel: context.channel },
      data,
      metadata,
    );
  }

  /** The content and metadata to store (hooks, then the content filters). */
  async sendMessage(
    context: SendMessageHookContext,
  ): Promise<{ content: string; metadata: Record<string, unknown> }> {
    let { content, metadata } = context;
    for (const h of this.hooks.send_message) {
      const out = await this.call(h, { ...context, content, metadata });
      if (out === undefined || out === null) continue;
      if (
        !isObject(out) ||
        (out.content !== undefined && typeof out.content !== 'string') ||
        (out.metadata !== undefined && !isObject(out.metadata))
      ) {
        throw this.invalid(h, 'send_message', '{content?, metadata?}');
      }
      if (out.content !== undefined) content = out.content;
      if (out.metadata !== undefined) metadata = out.metadata;
    }
    return this.filters.filter(
      { userId: context.identity.userId, type: 'send_message', roomId: context.roomId },
      content,
      metadata,
    );
  }

  /** The content of an edit, through the content filters. */
  async editMessage(identity: ConnectionIdentity, roomId: string, content: string): Promise<string> {
    return (await this.filters.filter({ userId: identity.userId, type: 'edit_message', roomId }, content, {}))
      .content;
  }

  private async call(h: Registered, context: unknown): Promise<Record<string, unknown> | undefined | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HookTimeout()), this.timeoutMs);
    });
    try {
      const out = await Promise.race([Promise.resolve().then(() => h.fn(context)), timeout]);
      return out as Record<string, unknown> | undefined | null;
    } catch (err) {
      if (err instanceof HookTimeout) {
        this.logger.warn(`hook ${h.label} did not settle within ${this.timeoutMs} ms`);
        throw new StreamingError('internal', 'a server hook did not answer in time');
      }
      if (err instanceof StreamingError) throw err;
      this.logger.error(
        `hook ${h.label} failed: ${err instanceof Error ? err.message : String(err)}`,
        err instanceof Error ? err.stack : undefined,
      );
      throw new StreamingError('internal', 'a server hook failed');
    } finally {
      clearTimeout(timer);
    }
  }

  private invalid(h: Registered, kind: StreamingHookKind, expected: string): StreamingError {
    this.logger.error(`${kind} hook ${h.label} returned something other than ${expected} or nothing`);
    return new StreamingError('internal', 'a server hook failed');
  }
}
