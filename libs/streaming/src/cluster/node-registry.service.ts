import { StreamingLogger } from '../common/streaming-logger';
import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { ConnectionRegistry } from '../connections/connection-registry';
import { StreamingStatsService } from '../metrics/streaming-stats.service';
import { InjectNodeDirectory, InjectStreamingOptions } from '../streaming.constants';
import { NodeDirectory, NodeInfo } from '../interfaces';

/**
 * Registers this node in the backend's node registry and refreshes it every
 * `heartbeat_interval`; a node that stops refreshing drops out after `node_timeout`.
 */
@Injectable()
export class NodeRegistryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new StreamingLogger('streaming.cluster');
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();

  constructor(
    @InjectNodeDirectory() private readonly nodes: NodeDirectory,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly registry: ConnectionRegistry,
    private readonly stats: StreamingStatsService,
  ) {}

  get nodeId(): string {
    return this.options.nodeId;
  }

  private info(): NodeInfo {
    return {
      nodeId: this.options.nodeId,
      startedAt: this.startedAt,
      lastHeartbeat: new Date().toISOString(),
      connections: this.registry.size,
      messagesPerSecond: this.stats.messagesPerSecond(),
      totalMessages: this.stats.totalMessages,
      ...(this.options.region ? { region: this.options.region } : {}),
      ...(this.options.advertiseUrl ? { address: this.options.advertiseUrl } : {}),
    };
  }

  async heartbeat(): Promise<void> {
    await this.nodes.registerNode(this.info(), this.options.nodeTimeout);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.heartbeat();
    this.timer = setInterval(() => {
      this.heartbeat().catch((err: unknown) => this.logger.warn(`node heartbeat failed: ${String(err)}`));
    }, this.options.heartbeatInterval * 1000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.nodes.removeNode(this.options.nodeId).catch(() => undefined);
  }

  /** Live nodes of the cluster (this one included while it is healthy). */
  listNodes(): Promise<NodeInfo[]> {
    return this.nodes.listNodes();
  }
}
