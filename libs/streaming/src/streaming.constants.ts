import { Inject } from '@nestjs/common';

/*
 * Every injection token of the module, in one place, with its parameter
 * decorator. This file imports nothing of the module: anything may import it.
 */

/** The options as given to `forRoot` / `forRootAsync` (before defaults and validation). */
export const STREAMING_MODULE_OPTIONS = Symbol('STREAMING_MODULE_OPTIONS');
/** The resolved, validated `StreamingOptions`. */
export const STREAMING_OPTIONS = Symbol('STREAMING_OPTIONS');
/** The whole backend (`StreamingBackend`): lifecycle and every port. */
export const STREAMING_BACKEND = Symbol('STREAMING_BACKEND');
/** The `Broker` port: pub/sub and room message logs. */
export const STREAMING_BROKER = Symbol('STREAMING_BROKER');
/** The `RoomStore` port: rooms, memberships, restrictions, invitations, moderation log. */
export const STREAMING_ROOM_STORE = Symbol('STREAMING_ROOM_STORE');
/** The `PresenceStore` port: presence, connection directory, expiring sets. */
export const STREAMING_PRESENCE_STORE = Symbol('STREAMING_PRESENCE_STORE');
/** The `NodeDirectory` port: live nodes. */
export const STREAMING_NODE_DIRECTORY = Symbol('STREAMING_NODE_DIRECTORY');
/** The `ReadStateStore` port: how far each user has read in each room. */
export const STREAMING_READ_STATE_STORE = Symbol('STREAMING_READ_STATE_STORE');
/** The `CounterStore` port the rate limiters count in. */
export const STREAMING_COUNTER_STORE = Symbol('STREAMING_COUNTER_STORE');
/** The active `Authenticator`. */
export const STREAMING_AUTHENTICATOR = Symbol('STREAMING_AUTHENTICATOR');
/** The active request `RateLimiter`. */
export const STREAMING_RATE_LIMITER = Symbol('STREAMING_RATE_LIMITER');
/** The per-user message cap (`max_messages_per_second`). */
export const STREAMING_MESSAGE_RATE_LIMITER = Symbol('STREAMING_MESSAGE_RATE_LIMITER');
/** The content filters, in order. */
export const STREAMING_CONTENT_FILTERS = Symbol('STREAMING_CONTENT_FILTERS');
/** The channel registry (`ChannelStore`). */
export const STREAMING_CHANNEL_STORE = Symbol('STREAMING_CHANNEL_STORE');
/** The private-channel `ChannelAuthorizer`. */
export const STREAMING_CHANNEL_AUTHORIZER = Symbol('STREAMING_CHANNEL_AUTHORIZER');

/** Parameter decorator: inject the resolved `StreamingOptions`. */
export const InjectStreamingOptions = (): ParameterDecorator => Inject(STREAMING_OPTIONS);
/** Parameter decorator: inject the whole backend. */
export const InjectStreamingBackend = (): ParameterDecorator => Inject(STREAMING_BACKEND);
/** Parameter decorator: inject the `Broker` port. */
export const InjectBroker = (): ParameterDecorator => Inject(STREAMING_BROKER);
/** Parameter decorator: inject the `RoomStore` port. */
export const InjectRoomStore = (): ParameterDecorator => Inject(STREAMING_ROOM_STORE);
/** Parameter decorator: inject the `PresenceStore` port. */
export const InjectPresenceStore = (): ParameterDecorator => Inject(STREAMING_PRESENCE_STORE);
/** Parameter decorator: inject the `NodeDirectory` port. */
export const InjectNodeDirectory = (): ParameterDecorator => Inject(STREAMING_NODE_DIRECTORY);
/** Parameter decorator: inject the `ReadStateStore` port. */
export const InjectReadStateStore = (): ParameterDecorator => Inject(STREAMING_READ_STATE_STORE);
/** Parameter decorator: inject the `CounterStore` port. */
export const InjectCounterStore = (): ParameterDecorator => Inject(STREAMING_COUNTER_STORE);
/** Parameter decorator: inject the active `ChannelStore`. */
export const InjectChannelStore = (): ParameterDecorator => Inject(STREAMING_CHANNEL_STORE);
/** Parameter decorator: inject the active `ChannelAuthorizer`. */
export const InjectChannelAuthorizer = (): ParameterDecorator => Inject(STREAMING_CHANNEL_AUTHORIZER);
