import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { StreamingLogger } from '../common/streaming-logger';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingEventMap, StreamingEvents } from '../events/streaming-events';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { InjectStreamingOptions } from '../streaming.constants';
import { WebhookDispatcher, type WebhookTuning } from './webhook-dispatcher';

/** Events a webhook can carry (`webhookEvents`). */
export type WebhookEventType = StreamingOptions['webhookEvents'][number];

/**
 * The JSON body of every webhook POST. `id` is also the `X-Streaming-Webhook-Id`
 * header: the same on every retry and every URL, so receivers can ignore a
 * delivery they already processed. `timestamp` is when the event happened
 * (ISO 8601); `data` is in the wire's shape (snake_case).
 */
export interface WebhookBody {
  id: string;
  type: WebhookEventType;
  node_id: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/**
 * Optional provider of internal knobs (`Partial<WebhookTuning>`: backoff base and
 * cap, concurrency, the POST function), for tests; not a configuration key.
 */
export const WEBHOOK_TUNING = Symbol('WEBHOOK_TUNING');

/** `data` of each event type, in the wire's shape. */
export function webhookData<K extends WebhookEventType>(
  type: K,
  event: StreamingEventMap[K],
): Record<string, unknown> {
  switch (type) {
    case 'room_message':
      // Already `messageToWire`-shaped (PROTOCOL.md §4 `message`), `room_id` included.
      return { ...(event as StreamingEventMap['room_message']).message };
    case 'presence':
      return { ...(event as StreamingEventMap['presence']).presence };
    default: {
      const c = event as StreamingEventMap['connect'];
      return {
        connection_id: c.connectionId,
        user_id: c.userId,
        session_id: c.identity.sessionId,
        transport: c.transport,
      };
    }
  }
}

/**
 * Webhooks: `connect`, `disconnect`, `room_message` and `presence` events of
 * this node (those of `webhookEvents`), POSTed as JSON ({@link WebhookBody})
 * to every URL of `webhookUrls`, signed (see `verifyWebhookSignature`), at
 * least once, retried with exponential backoff (`webhookMaxAttempts` tries,
 * `webhookTimeout` seconds each) from a bounded queue (`webhookQueueSize`;
 * past it new deliveries are dropped, counted in
 * `streaming_webhook_dropped_total` and logged). The event listeners only
 * queue: nothing a receiver does delays delivery to sockets. Each event is
 * sent by the node where it happened, once per cluster. Without
 * `webhookUrls` it listens to nothing.
 */
@Injectable()
export class WebhookService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new StreamingLogger('streaming.webhooks');
  private dispatcher: WebhookDispatcher | null = null;
  private unsubscribes: Array<() => void> = [];

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly events: StreamingEvents,
    private readonly metrics: StreamingMetricsService,
    @Optional() @Inject(WEBHOOK_TUNING) private readonly tuning?: Partial<WebhookTuning>,
  ) {}

  /** Whether webhooks are on (some `webhookUrls`) and not shut down. */
  get enabled(): boolean {
    return this.dispatcher !== null;
  }

  /** Deliveries waiting, in flight or waiting for a retry on this node. */
  get pending(): number {
    return this.dispatcher?.pending ?? 0;
  }

  onModuleInit(): void {
    const o = this.options;
    if (o.webhookUrls.length === 0 || this.dispatcher) return;
    const m = this.metrics;
    this.dispatcher = new WebhookDispatcher(
      {
        urls: [...new Set(o.webhookUrls)],
        secret: o.webhookSecret,
        queueSize: o.webhookQueueSize,
        maxAttempts: o.webhookMaxAttempts,
        timeoutMs: o.webhookTimeout * 1000,
      },
      this.tuning ?? {},
      {
        attempt: (result) => m.webhookAttempts.inc({ result }),
        settled: (result) => m.webhookDeliveries.inc({ result }),
        dropped: (reason, count) => m.webhookDropped.inc({ reason }, count),
        pending: (count) => m.webhookPending.set(count),
      },
      this.logger,
    );
    for (const type of new Set(o.webhookEvents)) this.unsubscribes.push(this.listen(type));
    this.logger.log(
      `webhooks: ${[...new Set(o.webhookEvents)].join(', ')} to ${o.webhookUrls.length} URL(s)`,
    );
  }

  onApplicationShutdown(): void {
    for (const stop of this.unsubscribes.splice(0)) stop();
    const dispatcher = this.dispatcher;
    this.dispatcher = null;
    const dropped = dispatcher?.close() ?? 0;
    if (dropped > 0) this.logger.warn(`shutdown: ${dropped} pending webhook deliveries dropped`);
  }

  /** Queue an event now (returns at once); false when off or nothing could be queued. */
  private publish(type: WebhookEventType, data: Record<string, unknown>): boolean {
    if (!this.dispatcher) return false;
    const body: WebhookBody = {
      id: randomUUID(),
      type,
      node_id: this.options.nodeId,
      timestamp: new Date().toISOString(),
      data,
    };
    return this.dispatcher.send(body.id, JSON.stringify(body)) > 0;
  }

  /** A synchronous listener: it builds the body and queues it, never awaiting anything. */
  private listen<K extends WebhookEventType>(type: K): () => void {
    return this.events.on(type, (event: StreamingEventMap[K]): void => {
      this.publish(type, webhookData(type, event));
    });
  }
}
