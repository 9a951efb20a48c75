import { IsNotEmpty, IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import { MAX_CHANNEL_LENGTH } from './channel-trie';

/**
 * DTOs of the channel requests (PROTOCOL.md section 4). They check shapes
 * only; ChannelService checks names, patterns, filters and permissions.
 */

/** `subscribe` */
export class SubscribeDto {
  @IsString() @IsNotEmpty() @MaxLength(MAX_CHANNEL_LENGTH) channel!: string;
  @IsOptional() @IsObject() filters?: Record<string, unknown>;
}

/** `unsubscribe` */
export class UnsubscribeDto {
  @IsString() @IsNotEmpty() @MaxLength(MAX_CHANNEL_LENGTH) channel!: string;
}

/** `publish` */
export class PublishDto {
  @IsString() @IsNotEmpty() @MaxLength(MAX_CHANNEL_LENGTH) channel!: string;
  @IsObject() data!: Record<string, unknown>;
  @IsOptional() @IsObject() metadata?: Record<string, unknown>;
}
