import { Injectable, Logger } from '@nestjs/common';
import { RoomMessageEvent, StreamingManager, SubscribeRoom } from '@nest-streaming/streaming';

/** The user id the help bot posts as. */
export const HELP_BOT_USER_ID = 'helpbot';

/** The chat commands the bot knows, with what they do. */
export const HELP_BOT_COMMANDS: Readonly<Record<string, string>> = {
  '/help': 'show this list of commands',
};

/** The bot's answer to `/help`. */
export const HELP_TEXT = [
  'Commands:',
  ...Object.entries(HELP_BOT_COMMANDS).map(([command, what]) => `${command}: ${what}`),
].join('\n');

/**
 * Demo of `@SubscribeRoom`: in every room, a message whose content is exactly
 * `/help` gets an answer from user `helpbot` listing the commands. The bot
 * never answers its own messages, so its replies cannot loop.
 */
@Injectable()
export class HelpBotService {
  private readonly logger = new Logger(HelpBotService.name);

  constructor(private readonly streaming: StreamingManager) {}

  @SubscribeRoom('*')
  async onRoomMessage({ roomId, message }: RoomMessageEvent): Promise<void> {
    if (message.user_id === HELP_BOT_USER_ID || message.content !== '/help') return;
    await this.streaming.saveMessage(roomId, HELP_BOT_USER_ID, HELP_TEXT, { reply_to: message.id });
    this.logger.debug(`answered /help of ${message.user_id} in room ${roomId}`);
  }
}
