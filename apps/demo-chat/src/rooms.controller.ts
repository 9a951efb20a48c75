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

class CreateRoomBody {
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @IsOptional() @IsString() @MaxLength(2000) description?: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @IsInt() @Min(1) max_members?: number;
}

class ModerationBody {
  @IsIn(['ban', 'unban', 'kick', 'mute', 'unmute']) action!: ModerationAction;
  @IsString() @IsNotEmpty() @MaxLength(256) target_id!: string;
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
  @IsOptional() @IsInt() @Min(1) duration_s?: number;
}

class InvitationBody {
  @IsString() @IsNotEmpty() @MaxLength(256) user_id!: string;
}

class UpdateRoomBody {
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(200) name?: string;
  @IsOptional() @IsString() @MaxLength(2000) description?: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @IsInt() @Min(1) max_members?: number;
}

class LogQuery {
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) limit?: number;
}

class HistoryQuery {
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) limit?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) before?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) after?: number;
}

/** The room REST API of PROTOCOL.md section 1, on the library's services: same rules as WebSocket. */
@Controller('api/rooms')
@UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)
export class RoomsController {
  constructor(
    private readonly rooms: RoomService,
    private readonly history: HistoryService,
    private readonly moderation: ModerationService,
  ) {}

  @Post()
  create(@StreamingUser() user: ConnectionIdentity, @Body() body: CreateRoomBody): Promise<WireRoom> {
    return this.rooms.create(user.userId, {
      name: body.name,
      description: body.description,
      private: body.private,
      maxMembers: body.max_members ?? null,
    });
  }

  @Get()
  async list(@StreamingUser() user: ConnectionIdentity): Promise<{ rooms: WireRoom[] }> {
    return { rooms: await this.rooms.list(user.userId) };
  }

  @Get(':id')
  async get(@StreamingUser() user: ConnectionIdentity, @Param('id') id: string): Promise<RoomDetails> {
    const room = await this.rooms.get(id);
    if (room.private && !room.members.some((m) => m.user_id === user.userId)) {
      throw new StreamingError('forbidden', `room ${id} is private`);
    }
    return room;
  }

  @Post(':id/join')
  @HttpCode(200)
  join(@StreamingUser() user: ConnectionIdentity, @Param('id') id: string): Promise<RoomJoinedEvent> {
    return this.rooms.join(user.userId, id);
  }

  @Post(':id/leave')
  @HttpCode(200)
  async leave(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
  ): Promise<{ room_id: string }> {
    await this.rooms.leave(user.userId, id);
    return { room_id: id };
  }

  @Get(':id/history')
  async historyPage(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Query() q: HistoryQuery,
  ): Promise<{ messages: WireMessage[] }> {
    return { messages: await this.history.page(user.userId, id, q) };
  }

  @Patch(':id')
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
  async remove(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
  ): Promise<{ room_id: string }> {
    await this.rooms.delete(user.userId, id);
    return { room_id: id };
  }

  @Post(':id/moderation')
  @HttpCode(200)
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
  async moderationLog(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Query() q: LogQuery,
  ): Promise<{ entries: WireModerationEntry[] }> {
    return { entries: (await this.moderation.log(user.userId, id, q.limit)).map(moderationEntryToWire) };
  }

  @Post(':id/invitations')
  @HttpCode(201)
  async invite(
    @StreamingUser() user: ConnectionIdentity,
    @Param('id') id: string,
    @Body() body: InvitationBody,
  ): Promise<{ room_id: string; user_id: string }> {
    await this.rooms.invite(user.userId, id, body.user_id);
    return { room_id: id, user_id: body.user_id };
  }
}
