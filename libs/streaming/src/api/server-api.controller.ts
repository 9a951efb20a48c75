import { Body, Get, HttpCode, Param, Post, Query, UseGuards, UsePipes, ValidationPipe } from '@nestjs/common';
import type { PublishResult } from '../channels/channel.types';
import { WireMessage, WirePresence } from '../protocol/wire';
import { ApiKeyGuard } from '../security/api-key.guard';
import { StreamingRateLimitGuard } from '../security/rate-limit.guard';
import { StreamingManager } from '../streaming-manager.service';
import { ApiDisconnectBody, ApiHistoryQuery, ApiPublishBody, ApiRoomMessageBody } from './server-api.dto';

/**
 * The server API of PROTOCOL.md §10, for the app's other services: mounted
 * at `<routes.prefix>/_/streaming/api` (route key `api`), answering only
 * with a configured `apiKey` (404 otherwise, 401 for a missing or wrong
 * key), rate limited per key like any REST route. Each route is one
 * {@link StreamingManager} call, which code in the app can make directly.
 */
@UseGuards(ApiKeyGuard, StreamingRateLimitGuard)
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
export class ServerApiController {
  constructor(private readonly manager: StreamingManager) {}

  @Post('publish')
  @HttpCode(200)
  publish(@Body() body: ApiPublishBody): Promise<PublishResult> {
    return this.manager.publishToChannel(body.channel, body.data, body.metadata);
  }

  @Post('rooms/:id/messages')
  postMessage(@Param('id') roomId: string, @Body() body: ApiRoomMessageBody): Promise<WireMessage> {
    return this.manager.postMessage(roomId, body.content, { userId: body.user_id, metadata: body.metadata });
  }

  @Post('users/:id/disconnect')
  @HttpCode(200)
  async disconnect(
    @Param('id') userId: string,
    @Body() body: ApiDisconnectBody,
  ): Promise<{ disconnected: number | null }> {
    return { disconnected: await this.manager.disconnectUser(userId, body.reason) };
  }

  @Get('rooms/:id/presence')
  async presence(@Param('id') roomId: string): Promise<{ presence: WirePresence[] }> {
    return { presence: await this.manager.roomPresence(roomId) };
  }

  @Get('rooms/:id/history')
  async history(
    @Param('id') roomId: string,
    @Query() query: ApiHistoryQuery,
  ): Promise<{ messages: WireMessage[] }> {
    return { messages: await this.manager.getHistory(roomId, query) };
  }
}
