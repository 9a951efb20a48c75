import {
  IsBoolean,
  IsIn,
  IsInt,
  Max,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  MaxLength,
  Min,
  ValidateIf,
  IsArray,
  ArrayMaxSize,
} from 'class-validator';

const ROOM_ID_MAX = 128;

/** `create_room` */
export class CreateRoomDto {
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @IsOptional() @IsString() @MaxLength(2000) description?: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsInt() @Min(1) max_members?: number | null;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
}

/** Requests naming one room: `join_room`, `leave_room`, `start_typing`, `stop_typing`. */
export class RoomRefDto {
  @IsString() @IsNotEmpty() @MaxLength(ROOM_ID_MAX) room_id!: string;
}

/** `send_message` */
export class SendMessageDto extends RoomRefDto {
  @IsString() content!: string;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
  /** Threads: the message (same room) this one replies to. */
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(128) reply_to?: string;
}

/** Requests naming one message. */
export class MessageRefDto extends RoomRefDto {
  @IsString() @IsNotEmpty() @MaxLength(128) message_id!: string;
}

/** `edit_message` */
export class EditMessageDto extends MessageRefDto {
  @IsString() content!: string;
}

/** `add_reaction`, `remove_reaction` */
export class ReactionDto extends MessageRefDto {
  @IsString() @IsNotEmpty() @MaxLength(64) reaction!: string;
}

/** `get_history` */
export class GetHistoryDto extends RoomRefDto {
  @IsOptional() @IsInt() @Min(0) limit?: number;
  @IsOptional() @IsInt() @Min(0) before?: number;
  @IsOptional() @IsInt() @Min(0) after?: number;
}

/** `get_thread` */
export class GetThreadDto extends RoomRefDto {
  @IsString() @IsNotEmpty() @MaxLength(128) thread_id!: string;
  @IsOptional() @IsInt() @Min(1) limit?: number;
}

/** `search_messages` */
export class SearchMessagesDto extends RoomRefDto {
  @IsString() @MaxLength(500) query!: string;
  @IsOptional() @IsInt() @Min(1) @Max(100) limit?: number;
}

/** `open_direct` */
export class OpenDirectDto {
  @IsString() @IsNotEmpty() @MaxLength(256) user_id!: string;
}

/** `mark_read` (read state) */
export class MarkReadDto extends RoomRefDto {
  @IsInt() @Min(0) seq!: number;
}

/** `refresh_token` */
export class RefreshTokenDto {
  @IsString() @IsNotEmpty() @MaxLength(16384) token!: string;
}

/** `resume` */
export class ResumeDto {
  @IsObject() rooms!: Record<string, number>;
}

/** `set_role` */
export class SetRoleDto extends RoomRefDto {
  @IsString() @IsNotEmpty() user_id!: string;
  @IsIn(['owner', 'admin', 'moderator', 'member']) role!: 'owner' | 'admin' | 'moderator' | 'member';
}

/** `set_presence` */
export class SetPresenceDto {
  @IsIn(['online', 'away', 'busy', 'offline']) status!: 'online' | 'away' | 'busy' | 'offline';
  @IsOptional() @IsString() @MaxLength(200) custom?: string;
}

/** `get_presence` */
export class GetPresenceDto {
  @IsOptional() @IsString() @IsNotEmpty() room_id?: string;
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @IsString({ each: true }) user_ids?: string[];
}

/** `invite` */
export class InviteDto extends RoomRefDto {
  @IsString() @IsNotEmpty() @MaxLength(256) user_id!: string;
}

/** `moderate` (and `POST /api/rooms/:id/moderation` without room_id). */
export class ModerateDto extends RoomRefDto {
  @IsIn(['ban', 'unban', 'kick', 'mute', 'unmute']) action!: 'ban' | 'unban' | 'kick' | 'mute' | 'unmute';
  @IsString() @IsNotEmpty() @MaxLength(256) target_id!: string;
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
  @IsOptional() @IsInt() @Min(1) duration_s?: number;
}

/** `update_room` */
export class UpdateRoomDto extends RoomRefDto {
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(200) name?: string;
  @IsOptional() @IsString() @MaxLength(2000) description?: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsInt() @Min(1) max_members?: number | null;
}

/** `get_moderation_log` */
export class ModerationLogDto extends RoomRefDto {
  @IsOptional() @IsInt() @Min(1) limit?: number;
}

/** `create_channel` */
export class CreateChannelDto {
  @IsString() @IsNotEmpty() @MaxLength(256) name!: string;
  @IsOptional() @IsBoolean() private?: boolean;
  @IsOptional() @IsString() @MaxLength(500) description?: string;
}

/** `find_channels` */
export class FindChannelsDto {
  @IsString() @IsNotEmpty() @MaxLength(256) pattern!: string;
}
