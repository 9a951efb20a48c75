import { Provider } from '@nestjs/common';
import { CreatorOnlyChannelAuthorizer } from './channel-authorizer';
import { InMemoryChannelStore } from './channel-store';
import { ChannelService } from './channel.service';
import {
  STREAMING_CHANNEL_AUTHORIZER,
  STREAMING_CHANNEL_STORE,
  STREAMING_MODULE_OPTIONS,
} from '../streaming.constants';
import type { ChannelAuthorizer, ChannelStore } from '../interfaces';
import type { ChannelModuleOptions } from '../config/streaming-options.interface';

/** The channel providers of `StreamingModule`: the store, the authorizer (both overridable through options) and the service. */
export const channelProviders: Provider[] = [
  {
    provide: STREAMING_CHANNEL_STORE,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: ChannelModuleOptions): ChannelStore => raw.channelStore ?? new InMemoryChannelStore(),
  },
  {
    provide: STREAMING_CHANNEL_AUTHORIZER,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: ChannelModuleOptions): ChannelAuthorizer =>
      raw.channelAuthorizer ?? new CreatorOnlyChannelAuthorizer(),
  },
  ChannelService,
];
