import type { WireChannel, ChannelActor, ChannelAuthorizer } from '../interfaces';

/** The default: only the creator of a private channel may subscribe or publish to it. */
export class CreatorOnlyChannelAuthorizer implements ChannelAuthorizer {
  authorize(actor: ChannelActor, channel: WireChannel): boolean {
    return channel.created_by !== null && channel.created_by === actor.userId;
  }
}
