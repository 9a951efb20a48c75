import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import {
  ConnectionIdentity,
  HistoryService,
  RoomDetails,
  RoomJoinedEvent,
  RoomService,
  StreamingAuthGuard,
  StreamingError,
  StreamingUser,
  WireMessage,
  WireRoom,
} from '@nest-streaming/streaming';

class CreateRoomBody {
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @IsOptional() @IsString() @MaxLength(2000) description?: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @IsInt() @Min(1) max_members?: number;
}

class HistoryQuery {
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) limit?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) before?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) after?: number;
}

/** The room REST API of PROTOCOL.md section 1, on the library's services: same rules as WebSocket. */
@Controller('api/rooms')
@UseGuards(StreamingAuthGuard)
export class RoomsController {
  constructor(
    private readonly rooms: RoomService,
    private readonly history: HistoryService,
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
}
