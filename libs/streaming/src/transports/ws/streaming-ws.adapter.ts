import { INestApplicationContext } from '@nestjs/common';
import { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import { Observable } from 'rxjs';
import type WebSocket from 'ws';

/**
 * `WsAdapter` that leaves the streaming gateway's frames to the gateway
 * (which parses each frame once) while other gateways keep Nest's usual
 * `{event, data}` handling. Use: `app.useWebSocketAdapter(new StreamingWsAdapter(app))`.
 */
export class StreamingWsAdapter extends WsAdapter {
  constructor(app?: INestApplicationContext) {
    super(app);
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
