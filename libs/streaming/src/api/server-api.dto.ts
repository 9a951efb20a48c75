import { Type } from 'class-transformer';
import { IsInt, IsNotEmpty, IsObject, IsOptional, IsString, MaxLength, Min } from 'class-validator';

/** `POST …/api/publish` */
export class ApiPublishBody {
  @IsString() @IsNotEmpty() @MaxLength(512) channel!: string;
  @IsObject() data!: Record<string, unknown>;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
}

/** `POST …/api/rooms/:id/messages` */
export class ApiRoomMessageBody {
  @IsString() @IsNotEmpty() content!: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(256) user_id?: string;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
}

/** `POST …/api/users/:id/disconnect` */
export class ApiDisconnectBody {
  @IsOptional() @IsString() @MaxLength(123) reason?: string;
}

/** `GET …/api/rooms/:id/history` */
export class ApiHistoryQuery {
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) limit?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) before?: number;
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) after?: number;
}
