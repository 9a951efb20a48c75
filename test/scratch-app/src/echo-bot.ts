import { Injectable } from '@nestjs/common';
import { StreamingManager, SubscribeRoom, type RoomMessageEvent } from '@nest-streaming/streaming';
import { ANNOUNCER_USER_ID } from './announce.controller';

/** The user id the bot posts as. */
export const ECHO_BOT_USER_ID = 'echo-bot';

/** Answers every user message, in every room, with `echo: <content>`. */
@Injectable()
export class EchoBot {
  constructor(private readonly streaming: StreamingManager) {}

  @SubscribeRoom('*')
  async onRoomMessage({ roomId, message }: RoomMessageEvent): Promise<void> {
    // Server-side messages fire this handler too: skip them, or the bot would answer itself forever.
    if (message.user_id === ECHO_BOT_USER_ID || message.user_id === ANNOUNCER_USER_ID) return;
    await this.streaming.saveMessage(roomId, ECHO_BOT_USER_ID, `echo: ${message.content}`, {
      reply_to: message.id,
    });
  }
}
