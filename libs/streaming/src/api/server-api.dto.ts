import { Type } from 'class-transformer';
import { IsInt, IsNotEmpty, IsObject, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '../docs/swagger';

const OBJECT = { type: 'object', additionalProperties: true } as const;

/** `POST …/api/publish` */
export class ApiPublishBody {
  @ApiProperty({ description: 'A channel name (no pattern).', maxLength: 512, example: 'orders.eu' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(512)
  channel!: string;

  @ApiProperty({ ...OBJECT, description: 'The publication (`channel_message.data`).' })
  @IsObject()
  data!: Record<string, unknown>;

  @ApiPropertyOptional({ ...OBJECT, description: 'Free-form; `{}` when left out.' })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;
}

/** `POST …/api/rooms/:id/messages` */
export class ApiRoomMessageBody {
  @ApiProperty({ example: 'Deploy finished.' })
  @IsString()
  @IsNotEmpty()
  content!: string;

  @ApiPropertyOptional({ description: 'The author shown; default `"system"`.', maxLength: 256 })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  user_id?: string;

  @ApiPropertyOptional({ ...OBJECT, description: 'Free-form; `{}` when left out.' })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    description:
      'A message id of the same room: the message is a thread reply to it, as with `send_message`.',
    maxLength: 128,
  })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(128)
  reply_to?: string;
}

/** `POST …/api/users/:id/disconnect` */
export class ApiDisconnectBody {
  @ApiPropertyOptional({ description: 'The close reason (at most 123 bytes).', maxLength: 123 })
  @IsOptional()
  @IsString()
  @MaxLength(123)
  reason?: string;
}

/** `GET …/api/rooms/:id/history` */
export class ApiHistoryQuery {
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
