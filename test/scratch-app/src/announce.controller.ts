import { Body, Controller, Param, Post, UseGuards } from '@nestjs/common';
import {
  StreamingAuthGuard,
  StreamingManager,
  StreamingUser,
  type ConnectionIdentity,
} from '@nest-streaming/streaming';

/** The user id announcements are posted as. */
export const ANNOUNCER_USER_ID = 'announcer';

/** The app's own HTTP API, posting into rooms through {@link StreamingManager}. */
@Controller('announce')
export class AnnounceController {
  constructor(private readonly streaming: StreamingManager) {}

  /** `POST /announce/:room {"text": "..."}` with `Authorization: Bearer <token>`. */
  @Post(':room')
  @UseGuards(StreamingAuthGuard)
  async announce(
    @Param('room') roomId: string,
    @Body() body: { text?: string },
    @StreamingUser() user: ConnectionIdentity,
  ): Promise<{ message_id: string; seq: number }> {
    const message = await this.streaming.saveMessage(roomId, ANNOUNCER_USER_ID, String(body.text ?? ''), {
      requested_by: user.userId,
    });
    return { message_id: message.id, seq: message.seq };
  }
}
