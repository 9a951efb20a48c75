import type { IncomingHttpHeaders } from 'node:http';
import type { ConnectionIdentity } from '../interfaces';

/** `@BeforeConnect()`: a WebSocket upgrade or SSE request whose token was accepted. */
export interface ConnectHookContext {
  identity: ConnectionIdentity;
  transport: 'ws' | 'sse';
  /** The request's URL (path and query) and headers. */
  url: string;
  headers: IncomingHttpHeaders;
}

/** What a connect hook may change: the identity's display name, roles and metadata. */
export type ConnectHookResult = Partial<Pick<ConnectionIdentity, 'name' | 'roles' | 'metadata'>>;

/** `@BeforeJoin()`: a user asks to join a room (`join_room`, SSE `rooms=`). */
export interface JoinHookContext {
  identity: ConnectionIdentity;
  roomId: string;
}

/** `@BeforeSubscribe()`: a connection subscribes to a channel or pattern. */
export interface SubscribeHookContext {
  identity: ConnectionIdentity;
  channel: string;
  filters?: Record<string, unknown>;
}

/** What a subscribe hook may change. */
export interface SubscribeHookResult {
  filters?: Record<string, unknown>;
}

/** `@BeforePublish()`: a user publishes on a channel. */
export interface PublishHookContext {
  identity: ConnectionIdentity;
  channel: string;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** What a publish hook may change. */
export interface PublishHookResult {
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** `@BeforeSendMessage()`: a user sends a room message. */
export interface SendMessageHookContext {
  identity: ConnectionIdentity;
  roomId: string;
  content: string;
  metadata: Record<string, unknown>;
}

/** What a send-message hook may change: the message to store. */
export interface SendMessageHookResult {
  content?: string;
  metadata?: Record<string, unknown>;
}

/** Each hook kind: its context and what it may return (nothing keeps the request as it is). */
export interface StreamingHookMap {
  connect: { context: ConnectHookContext; result: ConnectHookResult };
  join: { context: JoinHookContext; result: undefined };
  subscribe: { context: SubscribeHookContext; result: SubscribeHookResult };
  publish: { context: PublishHookContext; result: PublishHookResult };
  send_message: { context: SendMessageHookContext; result: SendMessageHookResult };
}

/** A hook kind. */
export type StreamingHookKind = keyof StreamingHookMap;

/** A hook function of kind `K`. */
export type StreamingHookFn<K extends StreamingHookKind> = (
  context: StreamingHookMap[K]['context'],
) => StreamingHookMap[K]['result'] | void | Promise<StreamingHookMap[K]['result'] | void>;
