/** Pub/sub channels: re-exported by name from the library's index.ts. */
export {
  ChannelTrie,
  validateChannelName,
  validatePattern,
  hasWildcard,
  patternMatches,
  MAX_CHANNEL_TOKENS,
  MAX_CHANNEL_LENGTH,
} from './channel-trie';
export {
  matchesFilters,
  compileFilters,
  validateFilters,
  MAX_FILTER_FIELDS,
  MAX_FILTER_VALUES,
} from './channel-filters';
export type { ChannelFilters, FilterScalar, ChannelFilterPredicate } from './channel-filters';
export { InMemoryChannelStore, channelToWire } from './channel-store';
export { CreatorOnlyChannelAuthorizer } from './channel-authorizer';
export { ChannelService, CHANNEL_MESSAGE_EVENT, MAX_CHANNEL_DESCRIPTION } from './channel.service';
export type {
  ChannelMessageEvent,
  CreateChannelInput,
  SubscribeResult,
  UnsubscribeResult,
  PublishResult,
  ChannelStats,
} from './channel.service';
export { SubscribeDto, UnsubscribeDto, PublishDto } from './channel-requests.dto';
export { userToken } from './channel-bus';
export { channelProviders } from './channel.providers';
export type { ChannelModuleOptions } from '../config/streaming-options.interface';
export type {
  ChannelStore,
  ChannelRecord,
  WireChannel,
  ChannelAuthorizer,
  ChannelActor,
  ChannelAction,
} from '../interfaces';
