import type { IncomingMessage } from 'node:http';
import { INestApplicationContext } from '@nestjs/common';
import { StreamingOptions } from '../../config/streaming-options.interface';
import { STREAMING_WS_PATH, StreamingGateway } from './streaming.gateway';
import { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import { Observable } from 'rxjs';
import type { Server, WebSocket } from 'ws';
import { STREAMING_OPTIONS } from '../../streaming.constants';

/**
 * `WsAdapter` that serves the streaming gateway at the configured `wsPath`
 * and hands its sockets straight to it: the gateway parses each frame once,
 * watches its own sockets' errors and has no handler for Nest to bind, so a
 * connection skips Nest's per-connection observables. Other gateways keep
 * Nest's usual `{event, data}` handling.
 * Use: `app.useWebSocketAdapter(new StreamingWsAdapter(app))`.
 */
export class StreamingWsAdapter extends WsAdapter {
  private readonly streamingServers = new WeakSet<object>();
  private creatingStreamingServer = false;

  constructor(private readonly app?: INestApplicationContext) {
    super(app);
  }

  override create(port: number, options?: Record<string, unknown> & { path?: string }): unknown {
    if (options?.path !== STREAMING_WS_PATH || !this.app) return super.create(port, options);
    const configured = this.app.get<StreamingOptions>(STREAMING_OPTIONS, { strict: false }).wsPath;
    this.creatingStreamingServer = true;
    try {
      const server = super.create(port, { ...options, path: configured }) as object;
      this.streamingServers.add(server);
      return server;
    } finally {
      this.creatingStreamingServer = false;
    }
  }

  /** The streaming server's sockets get their error listener from the gateway, first thing. */
  override bindErrorHandler(server: Server): Server {
    if (!this.creatingStreamingServer) return super.bindErrorHandler(server) as Server;
    server.on('error', (err) => this.logger.error(err));
    return server;
  }

  override bindClientConnect(server: Server, callback: (...args: unknown[]) => void): void {
    if (!this.streamingServers.has(server) || !this.app) {
      super.bindClientConnect(server, callback);
      return;
    }
    const gateway = this.app.get(StreamingGateway, { strict: false });
    server.on('connection', (socket: WebSocket, req: IncomingMessage) =>
      gateway.handleConnection(socket, req),
    );
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }
}
