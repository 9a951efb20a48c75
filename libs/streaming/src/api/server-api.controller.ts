import { Body, Get, HttpCode, Param, Post, Query, UseGuards, UsePipes, ValidationPipe } from '@nestjs/common';
import { protocolSchemas, s } from '@nest-streaming/protocol';
import type { PublishResult } from '../channels/channel.types';
import { WireMessage, WirePresence } from '../protocol/wire';
import { ApiKeyGuard } from '../security/api-key.guard';
import { StreamingRateLimitGuard } from '../security/rate-limit.guard';
import { StreamingManager } from '../streaming-manager.service';
import { ApiErrorResponses, ApiSchemaResponse, STREAMING_API_KEY_SECURITY } from '../docs/openapi';
import { ApiOperation, ApiParam, ApiSecurity, ApiTags } from '../docs/swagger';
import { ApiDisconnectBody, ApiHistoryQuery, ApiPublishBody, ApiRoomMessageBody } from './server-api.dto';

const { WireMessage: WireMessageSchema, WirePresence: WirePresenceSchema } = protocolSchemas();

/**
 * The server API of PROTOCOL.md §10, for the app's other services: mounted
 * at `<routes.prefix>/_/streaming/api` (route key `api`), answering only
 * with a configured `apiKey` (404 otherwise, 401 for a missing or wrong
 * key), rate limited per key like any REST route. Each route is one
 * {@link StreamingManager} call, which code in the app can make directly.
 */
@UseGuards(ApiKeyGuard, StreamingRateLimitGuard)
@ApiTags('streaming server API')
@ApiSecurity(STREAMING_API_KEY_SECURITY)
@ApiErrorResponses(401, 404, 429)
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
export class ServerApiController {
  constructor(private readonly manager: StreamingManager) {}

  @Post('publish')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Publish on a channel',
    description:
      '`channel_message` with `publisher_id: null` to every matching subscriber on every node (private `user.<id>.*` channels included).',
  })
  @ApiSchemaResponse(
    200,
    'Published.',
    s.object({ channel: s.string(), timestamp: s.timestamp({ description: "The message's timestamp." }) }),
  )
  @ApiErrorResponses(400)
  publish(@Body() body: ApiPublishBody): Promise<PublishResult> {
    return this.manager.publishToChannel(body.channel, body.data, body.metadata);
  }

  @Post('rooms/:id/messages')
  @ApiOperation({
    summary: 'Post a room message',
    description:
      'Stored and delivered exactly like `send_message` (seq, history, resume, threads with `reply_to`); `user_id` defaults to `"system"`.',
  })
  @ApiParam({ name: 'id', description: 'The room id.' })
  @ApiSchemaResponse(201, 'The stored message.', WireMessageSchema)
  @ApiErrorResponses(400)
  postMessage(@Param('id') roomId: string, @Body() body: ApiRoomMessageBody): Promise<WireMessage> {
    return this.manager.postMessage(roomId, body.content, {
      userId: body.user_id,
      metadata: body.metadata,
      replyTo: body.reply_to,
    });
  }

  @Post('users/:id/disconnect')
  @HttpCode(200)
  @ApiOperation({
    summary: "Disconnect a user's connections",
    description: 'Closes every connection of the user on every node with code 4403 and the reason.',
  })
  @ApiParam({ name: 'id', description: 'The user id.' })
  @ApiSchemaResponse(
    200,
    'Closed.',
    s.object({
      disconnected: s.nullable(s.integer({ minimum: 0 }), {
        description: 'Connections closed on all nodes, or null if unknown.',
      }),
    }),
  )
  @ApiErrorResponses(400)
  async disconnect(
    @Param('id') userId: string,
    @Body() body: ApiDisconnectBody,
  ): Promise<{ disconnected: number | null }> {
    return { disconnected: await this.manager.disconnectUser(userId, body.reason) };
  }

  @Get('rooms/:id/presence')
  @ApiOperation({ summary: "Presence of a room's members" })
  @ApiParam({ name: 'id', description: 'The room id.' })
  @ApiSchemaResponse(200, 'Their presence.', s.object({ presence: s.array(WirePresenceSchema) }))
  async presence(@Param('id') roomId: string): Promise<{ presence: WirePresence[] }> {
    return { presence: await this.manager.roomPresence(roomId) };
  }

  @Get('rooms/:id/history')
  @ApiOperation({
    summary: 'Room history',
    description:
      'Oldest first: without `after`, the newest `limit` messages (below `before` if given); with `after`, the oldest `limit` above it.',
  })
  @ApiParam({ name: 'id', description: 'The room id.' })
  @ApiSchemaResponse(200, 'A page of history.', s.object({ messages: s.array(WireMessageSchema) }))
  @ApiErrorResponses(400)
  async history(
    @Param('id') roomId: string,
    @Query() query: ApiHistoryQuery,
  ): Promise<{ messages: WireMessage[] }> {
    return { messages: await this.manager.getHistory(roomId, query) };
  }
}
