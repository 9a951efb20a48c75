import { INestApplicationContext } from '@nestjs/common';
import { StreamingOptions } from '../../config/streaming-options.interface';
import { STREAMING_WS_PATH } from './streaming.gateway';
import { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import { Observable } from 'rxjs';
import type { WebSocket } from 'ws';
import { STREAMING_OPTIONS } from '../../streaming.constants';

/**
 * `WsAdapter` that leaves the streaming gateway's frames to the gateway
 * (which parses each frame once) while other gateways keep Nest's usual
 * `{event, data}` handling, and serves the gateway at the configured
 * `wsPath`. Use: `app.useWebSocketAdapter(new StreamingWsAdapter(app))`.
 */
export class StreamingWsAdapter extends WsAdapter {
  constructor(private readonly app?: INestApplicationContext) {
    super(app);
  }

  override create(port: number, options?: Record<string, unknown> & { path?: string }): unknown {
    if (options?.path === STREAMING_WS_PATH && this.app) {
      const configured = this.app.get<StreamingOptions>(STREAMING_OPTIONS, { strict: false }).wsPath;
      options = { ...options, path: configured };
    }
    return super.create(port, options);
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
