// (b) A minimal NestJS 11 + @nestjs/platform-socket.io gateway, the way the
// Nest docs write one: join_room puts the socket in a Socket.IO room,
// send_message broadcasts with server.to(room).emit('message', ...) and the
// handler's return value is the ack. Channels are Socket.IO rooms too
// (prefixed `channel:`): subscribe joins one, publish emits `channel_message`.
// Plain JavaScript with the decorators applied by hand (what tsc's __decorate
// does), so no compile step is needed; the Nest packages are loaded with
// require, as a compiled Nest app loads them.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { WebSocketGateway, WebSocketServer, SubscribeMessage } = require('@nestjs/websockets');
const { IoAdapter } = require('@nestjs/platform-socket.io');

class BenchGateway {
  constructor() {
    this.seqs = new Map();
  }

  join(client, data) {
    client.join(data.room_id);
    return { room_id: data.room_id };
  }

  send(client, data) {
    const seq = (this.seqs.get(data.room_id) ?? 0) + 1;
    this.seqs.set(data.room_id, seq);
    const message = {
      id: randomUUID(),
      seq,
      room_id: data.room_id,
      user_id: 'sender',
      content: data.content,
      metadata: data.metadata ?? {},
      timestamp: new Date().toISOString(),
      reactions: {},
    };
    this.server.to(data.room_id).emit('message', message);
    return { message_id: message.id, seq };
  }

  subscribe(client, data) {
    client.join(`channel:${data.channel}`);
    return { channel: data.channel };
  }

  publish(_client, data) {
    const event = {
      channel: data.channel,
      data: data.data ?? {},
      metadata: data.metadata ?? {},
      publisher_id: 'sender',
      timestamp: new Date().toISOString(),
    };
    this.server.to(`channel:${data.channel}`).emit('channel_message', event);
    return { channel: data.channel, timestamp: event.timestamp };
  }
}

const method = (name) => Object.getOwnPropertyDescriptor(BenchGateway.prototype, name);
WebSocketServer()(BenchGateway.prototype, 'server');
SubscribeMessage('join_room')(BenchGateway.prototype, 'join', method('join'));
SubscribeMessage('send_message')(BenchGateway.prototype, 'send', method('send'));
SubscribeMessage('subscribe')(BenchGateway.prototype, 'subscribe', method('subscribe'));
SubscribeMessage('publish')(BenchGateway.prototype, 'publish', method('publish'));
Reflect.defineMetadata('design:paramtypes', [], BenchGateway);
WebSocketGateway({ transports: ['websocket'] })(BenchGateway);

class BenchModule {}
Module({ providers: [BenchGateway] })(BenchModule);

async function main() {
  const app = await NestFactory.create(BenchModule, { logger: ['warn', 'error'] });
  app.useWebSocketAdapter(new IoAdapter(app));
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  console.log(`nest-socketio listening on ${port}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
