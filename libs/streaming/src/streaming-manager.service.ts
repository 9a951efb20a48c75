import { Injectable } from '@nestjs/common';
import {
  InjectStreamingBackend,
  StoredMessage,
  StreamingBackend,
} from './backends/streaming-backend.interface';
import { StreamingOptions } from './config/streaming-options.interface';
import { FanoutService } from './connections/fanout.service';
import { HistoryService, HistoryPage } from './history/history.service';
import { StreamingStats } from './metrics/streaming-stats.service';
import { WireMessage } from './protocol/wire';
import { InjectStreamingOptions } from './streaming.module-definition';

/** The seed's GetStats. */
export interface StreamingStatsSnapshot {
  node_id: string;
  backend: string;
  active_connections: number;
  connections_by_transport: { ws: number; sse: number };
  users_online: number;
  total_rooms: number;
  total_channels: number;
  messages_per_second: number;
  total_messages: number;
  uptime_s: number;
}

/**
 * Server-side API in the spirit of the seed's Manager: what a client does
 * over the wire, an app can do from code.
 */
@Injectable()
export class StreamingManager {
  constructor(
    @InjectStreamingBackend() private readonly backend: StreamingBackend,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly history: HistoryService,
    private readonly stats: StreamingStats,
  ) {}

  /** Statistics of this node (rooms are cluster-wide). */
  async getStats(): Promise<StreamingStatsSnapshot> {
    const reg = this.fanout.registry;
    return {
      node_id: this.options.nodeId,
      backend: this.backend.kind,
      active_connections: reg.size,
      connections_by_transport: reg.transportCounts(),
      users_online: reg.usersOnline,
      total_rooms: await this.backend.countRooms(),
      total_channels: 0,
      messages_per_second: this.stats.messagesPerSecond(),
      total_messages: this.stats.totalMessages,
      uptime_s: Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000),
    };
  }

  /** Send an event to every member connection of a room, on every node. */
  broadcastToRoom(roomId: string, type: string, data: unknown): Promise<void> {
    return this.fanout.publishToRoom(roomId, type, data);
  }

  /** Send an event to every connection of a user, on every node. */
  sendToUser(userId: string, type: string, data: unknown): Promise<void> {
    return this.fanout.publishToUser(userId, type, data);
  }

  /** Store and deliver a message as `userId` (no membership checks). */
  saveMessage(
    roomId: string,
    userId: string,
    content: string,
    metadata?: Record<string, unknown>,
  ): Promise<StoredMessage> {
    return this.history.save(roomId, userId, content, metadata);
  }

  /** A page of a room's history, oldest first. */
  getHistory(roomId: string, page: HistoryPage = {}): Promise<WireMessage[]> {
    return this.history.read(roomId, page);
  }
}
