import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOperation,
  ApiParam,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import {
  ConnectionIdentity,
  HistoryService,
  ModerationAction,
  ModerationService,
  RoomDetails,
  RoomJoinedEvent,
  RoomService,
  StreamingAuthGuard,
  StreamingRateLimitGuard,
  StreamingError,
  StreamingUser,
  WireMessage,
  WireModerationEntry,
  moderationEntryToWire,
  WireRoom,
} from '@nest-streaming/streaming';
import { ApiErrors, schemas } from './api-docs';

const ROOM_ID = ApiParam({ name: 'id', description: 'The room id.' });
const MODERATION_ACTIONS = ['ban', 'unban', 'kick', 'mute', 'unmute'] as const;

class CreateRoomBody {
  @ApiProperty({ maxLength: 200, example: 'general' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000, description: 'Default "".' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiPropertyOptional({ description: 'Joinable by invitation only. Default false.' })
  @IsOptional()
  @IsBoolean()
  private?: boolean;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'Unlimited when left out.' })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_members?: number;
}

class ModerationBody {
  @ApiProperty({ enum: MODERATION_ACTIONS })
  @IsIn(MODERATION_ACTIONS)
  action!: ModerationAction;

  @ApiProperty({ maxLength: 256, description: 'The member acted on.' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  target_id!: string;

  @ApiPropertyOptional({ maxLength: 500 })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  reason?: string;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    description: 'Mute or ban for this long; until lifted when left out.',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  duration_s?: number;
}

class InvitationBody {
  @ApiProperty({ maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  user_id!: string;
}

class UpdateRoomBody {
  @ApiPropertyOptional({ maxLength: 200 })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  private?: boolean;

  @ApiPropertyOptional({ type: 'integer', minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_members?: number;
}

class LogQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'The newest entries to show.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  limit?: number;
}

class HistoryQuery {
  @ApiPropertyOptional({ type: 'integer', minimum: 0, description: 'How many messages (default 50).' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  limit?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, description: 'Only messages below this seq.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  before?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, description: 'Only messages above this seq.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after?: number;
}

/** The room REST API of PROTOCOL.md section 1, on the library's services: same rules as WebSocket. */
@Controller('api/rooms')
@UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)
@ApiTags('rooms')
@ApiBearerAuth()
@ApiErrors(401, 429)
export class RoomsController {
  constructor(
    private readonly rooms: RoomService,
    private readonly history: HistoryService,
    private readonly moderation: ModerationService,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create a room', description: 'The caller becomes its `owner`.' })
  @ApiResponse({ status: 201, description: 'The room.', schema: schemas.room })
  @ApiErrors(400)
  create(@StreamingUser() user: ConnectionIdentity, @Body() body: CreateRoomBody): Promise<WireRoom> {
    return this.rooms.create(user.userId, {
      name: body.name,
      description: body.description,
      private: body.private,
      maxMembers: body.max_members ?? null,
    });
  }

  @Get()
  @ApiOperation({
    summary: 'Rooms the caller may see',
    description: 'Public ones and private ones the caller is in.',
  })
  @ApiResponse({ status: 200, description: 'The rooms.', schema: schemas.rooms })
  async list(@StreamingUser() user: ConnectionIdentity): Promise<{ rooms: WireRoom[] }> {
    return { rooms: await this.rooms.list(user.userId) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'A room and its members' })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'The room with `members`.', schema: schemas.roomDetails })
  @ApiErrors(403, 404)
  async get(@StreamingUser() user: ConnectionIdentity, @Param('id') id: string): Promise<RoomDetails> {
    const room = await this.rooms.get(id);
    if (room.private && !room.members.some((m) => m.user_id === user.userId)) {
      throw new StreamingError('forbidden', `room ${id} is private`);
    }
    return room;
  }

  @Post(':id/join')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Join a room',
    description: 'Same rules and events as `join_room`; a member joining again gets 200.',
  })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'As `room_joined`.', schema: schemas.roomJoined })
  @ApiErrors(403, 404, 409)
  join(@StreamingUser() user: ConnectionIdentity, @Param('id') id: string): Promise<RoomJoinedEvent> {
    return this.rooms.join(user.userId, id);
  }

  @Post(':id/leave')
  @HttpCode(200)
  @ApiOperation({ summary: 'Leave a room', description: 'Same rules and events as `leave_room`.' })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'Left.', schema: schemas.roomId })
  @ApiErrors(403, 404)
  async leave(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
  ): Promise<{ room_id: string }> {
    await this.rooms.leave(user.userId, id);
    return { room_id: id };
  }

  @Get(':id/history')
  @ApiOperation({
    summary: 'Room history, oldest first (members only)',
    description:
      'Without `after`, the newest `limit` messages (below `before` if given); with `after`, the oldest `limit` above it.',
  })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'A page of history.', schema: schemas.messages })
  @ApiErrors(400, 403, 404)
  async historyPage(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Query() q: HistoryQuery,
  ): Promise<{ messages: WireMessage[] }> {
    return { messages: await this.history.page(user.userId, id, q) };
  }

  @Patch(':id')
  @ApiOperation({ summary: "Change a room's settings (admin or owner)" })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'The room.', schema: schemas.room })
  @ApiErrors(400, 403, 404)
  update(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Body() body: UpdateRoomBody,
  ): Promise<WireRoom> {
    return this.rooms.update(user.userId, id, {
      name: body.name,
      description: body.description,
      private: body.private,
      maxMembers: body.max_members,
    });
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete a room (owner)' })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'Deleted.', schema: schemas.roomId })
  @ApiErrors(403, 404)
  async remove(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
  ): Promise<{ room_id: string }> {
    await this.rooms.delete(user.userId, id);
    return { room_id: id };
  }

  @Post(':id/moderation')
  @HttpCode(200)
  @ApiOperation({ summary: 'Ban, unban, kick, mute or unmute a member' })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'The event sent to the room.', schema: schemas.moderation })
  @ApiErrors(400, 403, 404)
  moderate(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Body() body: ModerationBody,
  ): Promise<Record<string, unknown>> {
    return this.moderation.moderate(user.userId, {
      roomId: id,
      action: body.action,
      targetId: body.target_id,
      reason: body.reason,
      durationS: body.duration_s,
    });
  }

  @Get(':id/moderation')
  @ApiOperation({ summary: "A room's moderation log (moderators and up)" })
  @ROOM_ID
  @ApiResponse({ status: 200, description: 'The log, oldest first.', schema: schemas.moderationLog })
  @ApiErrors(400, 403, 404)
  async moderationLog(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Query() q: LogQuery,
  ): Promise<{ entries: WireModerationEntry[] }> {
    return { entries: (await this.moderation.log(user.userId, id, q.limit)).map(moderationEntryToWire) };
  }

  @Post(':id/invitations')
  @HttpCode(201)
  @ApiOperation({ summary: 'Invite a user to a private room (admin or owner)' })
  @ROOM_ID
  @ApiResponse({ status: 201, description: 'Invited.', schema: schemas.invitation })
  @ApiErrors(400, 403, 404)
  async invite(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Body() body: InvitationBody,
  ): Promise<{ room_id: string; user_id: string }> {
    await this.rooms.invite(user.userId, id, body.user_id);
    return { room_id: id, user_id: body.user_id };
  }
}
