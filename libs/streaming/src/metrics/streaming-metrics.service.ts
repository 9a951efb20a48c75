import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one module instance, in a registry of its own (two
 * apps in one process never share counters). Names start with `streaming_`.
 */
@Injectable()
export class StreamingMetricsService {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'streaming_connections',
    help: 'Live connections on this node',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'streaming_connections_opened_total',
    help: 'Connections accepted since start',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly messagesIn = new Counter({
    name: 'streaming_messages_in_total',
    help: 'Client requests received',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: 'streaming_messages_out_total',
    help: 'Envelopes queued to connections',
    registers: [this.registry],
  });
  readonly roomMessages = new Counter({
    name: 'streaming_room_messages_total',
    help: 'Chat messages stored and published',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'streaming_errors_total',
    help: 'Error frames sent, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly queueDrops = new Counter({
    name: 'streaming_send_queue_drops_total',
    help: 'Connections dropped because their bounded send queue overflowed',
    registers: [this.registry],
  });
  readonly busReceived = new Counter({
    name: 'streaming_bus_received_total',
    help: 'Payloads this node received from the backend, by topic kind (room, user)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'streaming_auth_failures_total',
    help: 'Refused connection attempts',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'streaming_webhook_deliveries_total',
    help: 'Webhook deliveries (one per event and URL) that ended: success (2xx), failed (every try failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly webhookAttempts = new Counter({
    name: 'streaming_webhook_attempts_total',
    help: 'Webhook POSTs (tries), by result: success, http_error, network_error, timeout',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly webhookDropped = new Counter({
    name: 'streaming_webhook_dropped_total',
    help: 'Webhook deliveries given up, by reason: queue_full, max_attempts, shutdown',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly webhookPending = new Gauge({
    name: 'streaming_webhook_pending',
    help: 'Webhook deliveries waiting, in flight or waiting for a retry on this node',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'streaming_process_' });
  }
}
