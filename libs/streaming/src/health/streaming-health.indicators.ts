import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { NodeRegistryService } from '../cluster/node-registry.service';
import { ConnectionRegistry } from '../connections/connection-registry';
import { StreamingOptions } from '../config/streaming-options.interface';
import { InjectStreamingBackend, InjectStreamingOptions } from '../streaming.constants';
import { StreamingBackend } from '../interfaces';

/** Terminus indicators: the module itself, its backend, and the cluster. */
@Injectable()
export class StreamingHealthIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    @InjectStreamingBackend() private readonly backend: StreamingBackend,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly registry: ConnectionRegistry,
    private readonly nodes: NodeRegistryService,
  ) {}

  /** Up while the module runs; reports this node's connections. */
  streaming() {
    return this.health
      .check('streaming')
      .up({ node_id: this.options.nodeId, connections: this.registry.size });
  }

  /** Up while the backend answers a ping; `warning` when its settings may lose acknowledged messages. */
  async backendHealth() {
    const session = this.health.check('backend');
    const started = Date.now();
    try {
      await this.backend.ping();
      const latency = Date.now() - started;
      const warning = (await this.backend.durabilityWarning?.()) ?? null;
      return session.up({ kind: this.backend.kind, latency_ms: latency, ...(warning ? { warning } : {}) });
    } catch (err) {
      return session.down({
        kind: this.backend.kind,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Up while this node sees itself in the node registry; lists every live node. */
  async distributed() {
    const session = this.health.check('distributed');
    try {
      const nodes = await this.nodes.listNodes();
      const data = {
        backend: this.backend.kind,
        distributed: this.backend.distributed,
        node_id: this.options.nodeId,
        nodes: nodes.map((n) => ({
          node_id: n.nodeId,
          connections: n.connections,
          last_heartbeat: n.lastHeartbeat,
        })),
      };
      return nodes.some((n) => n.nodeId === this.options.nodeId) ? session.up(data) : session.down(data);
    } catch (err) {
      return session.down({ error: err instanceof Error ? err.message : String(err) });
    }
  }
}
