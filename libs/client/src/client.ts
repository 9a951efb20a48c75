import type {
  ChannelFilters,
  Connected,
  CreateRoomInput,
  CreateRoomResult,
  DeleteMessageResult,
  EditMessageResult,
  GetPresenceInput,
  GetPresenceResult,
  GetUnreadResult,
  HistoryQuery,
  HistoryResult,
  InviteResult,
  JoinRoomResult,
  ModerateInput,
  ModerationEvent,
  PongResult,
  PresenceStatus,
  PublishResult,
  ReadStateEvent,
  ReactionResult,
  RoomIdResult,
  RoomRole,
  SendMessageResult,
  SetPresenceResult,
  SetRoleResult,
  SubscribeResult,
  ThreadResult,
  TypingResult,
  UnsubscribeResult,
  UpdateRoomInput,
  WireMessage,
  WireRoom,
} from '@nest-streaming/protocol';
import { ChannelSubscriptions } from './channels';
import { Connection } from './connection';
import { RoomCursors } from './cursors';
import type { Listener } from './emitter';
import { createClientEmitter, type ClientEmitter, type EventMap } from './events';
import {
  resolveOptions,
  type ConnectionState,
  type RequestOptions,
  type ResolvedOptions,
  type StreamingClientOptions,
  type TransportKind,
} from './options';
import { HttpApi, historyPath } from './rest';

// The client's option and event types live beside the parts that use them; they are
// re-exported here so that this module keeps exporting everything it always did.
export { orderMessages } from './cursors';
export type { ConnectionState, RequestOptions, StreamingClientOptions, TransportKind } from './options';
export type {
  AuthExpiredEvent,
  DisconnectedEvent,
  GapEvent,
  ReconnectingEvent,
  RoomsGoneEvent,
  StateChange,
  StreamingClientEvents,
} from './events';

/**
 * A typed client of the streaming protocol for browsers and Node.
 *
 * - `connect()` opens the transport and resolves with the `connected` data.
 * - `request()` and the typed helpers send requests and resolve with their ack.
 * - `on(event, listener)` receives typed events; `on('*')` every event.
 * - When the transport drops it reconnects with exponential backoff and full
 *   jitter, re-subscribes its channels, resumes every room from the last seq
 *   it delivered (replayed messages arrive through `message`, in seq order,
 *   without duplicates), then sends the requests queued meanwhile. Rooms the
 *   server no longer has are reported with `rooms_gone` and no longer resumed.
 * - A request refused with `rate_limited` is sent again after the server's
 *   `retry_after_ms` (`retryRateLimited` times at most, within its timeout),
 *   later requests waiting behind it so that order is kept.
 * - With `getToken`, a JWT's `exp` is no end: the open WebSocket gets a new
 *   token (`refresh_token`) before it, and a 4401 close reconnects with one.
 */
export class StreamingClient {
  private readonly opts: ResolvedOptions;
  private readonly emitter: ClientEmitter;
  /** Seq cursors per room: de-duplication, gaps, resume points. */
  private readonly cursors: RoomCursors;
  private readonly channels: ChannelSubscriptions;
  private readonly api: HttpApi;
  /** The connection state machine; it owns the transport, the request pipeline and the recovery. */
  private readonly link: Connection;

  constructor(private readonly options: StreamingClientOptions) {
    this.opts = resolveOptions(options);
    this.emitter = createClientEmitter();
    this.cursors = new RoomCursors(this.emitter);
    this.channels = new ChannelSubscriptions();
    this.api = new HttpApi(options);
    this.link = new Connection({
      options,
      opts: this.opts,
      emitter: this.emitter,
      cursors: this.cursors,
      channels: this.channels,
      http: this.api,
    });
  }

  // ------------------------------------------------------------------ state

  /** Current connection state. */
  get state(): ConnectionState {
    return this.link.state;
  }

  /** The transport in use. */
  get transport(): TransportKind {
    return this.opts.transport;
  }

  /** Data of the last `connected` envelope (null before the first). */
  get connection(): Connected | null {
    return this.link.connected;
  }

  /** Last seq delivered per room (what the next resume starts from, unless a history page went further). */
  get lastSeqs(): Record<string, number> {
    return this.cursors.snapshot();
  }

  /** Channel subscriptions restored after every reconnect: pattern -> filters. */
  get subscriptions(): ReadonlyMap<string, ChannelFilters | undefined> {
    return this.channels.all;
  }

  /** Requests waiting to be sent: in the offline buffer, or held back after a `rate_limited` refusal. */
  get queuedRequests(): number {
    return this.link.requests.queued;
  }

  /** Listen to an event; returns a function that removes the listener. */
  on<K extends keyof EventMap & string>(event: K, listener: Listener<EventMap[K]>): () => void {
    return this.emitter.on(event, listener);
  }

  /** Listen to the next occurrence of an event only. */
  once<K extends keyof EventMap & string>(event: K, listener: Listener<EventMap[K]>): () => void {
    return this.emitter.once(event, listener);
  }

  /** Remove a listener (or every listener of the event when none is given). */
  off<K extends keyof EventMap & string>(event: K, listener?: Listener<EventMap[K]>): void {
    this.emitter.off(event, listener);
  }

  // ------------------------------------------------------------ connecting

  /**
   * Connect. Resolves with the `connected` data once the connection is usable
   * (after re-subscribing and resuming when the client had a session before).
   * The first attempt does not retry: it rejects (`connect_failed`,
   * `unauthorized`) and the state returns to `closed`. While reconnecting it
   * skips the backoff wait and tries at once.
   */
  connect(): Promise<Connected> {
    return this.link.connect();
  }

  /**
   * Close for good: no reconnect. Requests waiting for an ack or in the
   * offline buffer reject with `closed`. Subscriptions and seqs are kept, so a
   * later connect() resumes where this connection stopped.
   */
  close(): void {
    this.link.close();
  }

  // ------------------------------------------------------------ requests

  /**
   * Send a request and resolve with its ack data. Rejects with a
   * {@link StreamingClientError}: the server's error code, `timeout` after
   * ackTimeoutMs, `disconnected` when the connection dropped before the ack,
   * `offline_buffer_full`, `receive_only` (SSE), `closed` or `not_connected`.
   * While (re)connecting, requests wait in the offline buffer and are sent
   * after the resume.
   *
   * A request refused with `rate_limited` is sent again after the server's
   * `retry_after_ms`, at most `retryRateLimited` times and only while its
   * timeout (counted from its first send) allows the wait; otherwise it
   * rejects with that `rate_limited` error. Until every refused request is
   * through, later requests wait behind them and the client sends one request
   * at a time, so requests keep their order (except those already sent when
   * the first refusal came back).
   */
  request<T = Record<string, unknown>>(
    type: string,
    data: Record<string, unknown> = {},
    options: RequestOptions = {},
  ): Promise<T> {
    return this.link.requests.submit<T>(type, data, options);
  }

  // ------------------------------------------------------------ typed requests

  /** `ping`: resolves with the `pong` data. */
  ping(): Promise<PongResult> {
    return this.request<PongResult>('ping');
  }

  /** `create_room`: the caller becomes owner and member. */
  createRoom(input: CreateRoomInput): Promise<CreateRoomResult> {
    return this.request<CreateRoomResult>('create_room', { ...input });
  }

  /** `open_direct`: the one direct room of the caller and `userId` (created on first use; same id from either side). */
  openDirect(userId: string): Promise<{ room: WireRoom }> {
    return this.request<{ room: WireRoom }>('open_direct', { user_id: userId });
  }

  /** `join_room` (idempotent for members). */
  joinRoom(roomId: string): Promise<JoinRoomResult> {
    return this.request<JoinRoomResult>('join_room', { room_id: roomId });
  }

  /** `leave_room` */
  leaveRoom(roomId: string): Promise<RoomIdResult> {
    return this.request<RoomIdResult>('leave_room', { room_id: roomId });
  }

  /** `update_room` (admins and the owner). */
  updateRoom(roomId: string, patch: UpdateRoomInput): Promise<{ room: WireRoom }> {
    return this.request<{ room: WireRoom }>('update_room', { room_id: roomId, ...patch });
  }

  /**
   * `send_message`: acks `{message_id, seq}`; the `message` event reaches every member, the sender too.
   * `options.replyTo`: a message id of the same room, making this message a reply in its thread.
   */
  sendMessage(
    roomId: string,
    content: string,
    metadata?: Record<string, unknown>,
    options: { replyTo?: string } = {},
  ): Promise<SendMessageResult> {
    return this.request<SendMessageResult>('send_message', {
      room_id: roomId,
      content,
      ...(metadata !== undefined ? { metadata } : {}),
      ...(options.replyTo !== undefined ? { reply_to: options.replyTo } : {}),
    });
  }

  /** `get_thread`: the thread's first message, then its replies, oldest first (members only). */
  getThread(roomId: string, threadId: string, limit?: number): Promise<ThreadResult> {
    return this.request<ThreadResult>('get_thread', {
      room_id: roomId,
      thread_id: threadId,
      ...(limit !== undefined ? { limit } : {}),
    });
  }

  /**
   * `search_messages`: messages of a room whose current content has every word
   * of `query` (case-insensitive, whole words), newest first (members only).
   */
  searchMessages(roomId: string, query: string, limit?: number): Promise<{ messages: WireMessage[] }> {
    return this.request<{ messages: WireMessage[] }>('search_messages', {
      room_id: roomId,
      query,
      ...(limit !== undefined ? { limit } : {}),
    });
  }

  /** `edit_message` (author or moderator+). */
  editMessage(roomId: string, messageId: string, content: string): Promise<EditMessageResult> {
    return this.request<EditMessageResult>('edit_message', {
      room_id: roomId,
      message_id: messageId,
      content,
    });
  }

  /** `delete_message` (author or moderator+). */
  deleteMessage(roomId: string, messageId: string): Promise<DeleteMessageResult> {
    return this.request<DeleteMessageResult>('delete_message', { room_id: roomId, message_id: messageId });
  }

  /** `add_reaction` */
  addReaction(roomId: string, messageId: string, reaction: string): Promise<ReactionResult> {
    return this.request<ReactionResult>('add_reaction', { room_id: roomId, message_id: messageId, reaction });
  }

  /** `remove_reaction` */
  removeReaction(roomId: string, messageId: string, reaction: string): Promise<ReactionResult> {
    return this.request<ReactionResult>('remove_reaction', {
      room_id: roomId,
      message_id: messageId,
      reaction,
    });
  }

  /**
   * `get_history`, oldest first. The newest seq of the page also becomes the
   * room's resume point if it is beyond what the client delivered.
   */
  async getHistory(roomId: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const result = await this.request<HistoryResult>('get_history', { room_id: roomId, ...query });
    this.cursors.noteHistory(roomId, result.messages);
    return result;
  }

  /** `mark_read`: the room is read up to `seq` (only moves forward); acks `{room_id, last_read_seq}`. */
  markRead(roomId: string, seq: number): Promise<ReadStateEvent> {
    return this.request<ReadStateEvent>('mark_read', { room_id: roomId, seq });
  }

  /** `get_unread`: read state and unread count of every room of the user. */
  getUnread(): Promise<GetUnreadResult> {
    return this.request<GetUnreadResult>('get_unread', {});
  }

  /** `start_typing` */
  startTyping(roomId: string): Promise<TypingResult> {
    return this.request<TypingResult>('start_typing', { room_id: roomId });
  }

  /** `stop_typing` */
  stopTyping(roomId: string): Promise<TypingResult> {
    return this.request<TypingResult>('stop_typing', { room_id: roomId });
  }

  /** `set_presence` */
  setPresence(status: PresenceStatus, custom?: string): Promise<SetPresenceResult> {
    return this.request<SetPresenceResult>('set_presence', {
      status,
      ...(custom !== undefined ? { custom } : {}),
    });
  }

  /** `get_presence` of a room's members or of some users. */
  getPresence(query: GetPresenceInput): Promise<GetPresenceResult> {
    return this.request<GetPresenceResult>('get_presence', { ...query });
  }

  /** `subscribe` to a channel or pattern (`*` one token, `>` the rest); restored after every reconnect. */
  async subscribe(channel: string, filters?: ChannelFilters): Promise<SubscribeResult> {
    const result = await this.request<SubscribeResult>(
      'subscribe',
      filters === undefined ? { channel } : { channel, filters },
    );
    this.channels.remember(channel, filters);
    return result;
  }

  /** `unsubscribe` (it is no longer restored after a reconnect). */
  unsubscribe(channel: string): Promise<UnsubscribeResult> {
    this.channels.forget(channel);
    return this.request<UnsubscribeResult>('unsubscribe', { channel });
  }

  /** `publish` to a channel: `channel_message` to every matching subscriber. */
  publish(
    channel: string,
    data: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<PublishResult> {
    return this.request<PublishResult>('publish', {
      channel,
      data,
      ...(metadata !== undefined ? { metadata } : {}),
    });
  }

  /** `invite` a user to a (private) room. */
  invite(roomId: string, userId: string): Promise<InviteResult> {
    return this.request<InviteResult>('invite', { room_id: roomId, user_id: userId });
  }

  /** `set_role` of a member. */
  setRole(roomId: string, userId: string, role: RoomRole): Promise<SetRoleResult> {
    return this.request<SetRoleResult>('set_role', { room_id: roomId, user_id: userId, role });
  }

  /** `moderate`: ban, unban, kick, mute or unmute. */
  moderate(input: ModerateInput): Promise<ModerationEvent> {
    return this.request<ModerationEvent>('moderate', { ...input });
  }

  // ------------------------------------------------------------ REST

  /**
   * `GET /api/rooms/:id/history` over HTTP (works in SSE mode too, e.g. to
   * reload a room after a `gap`). Like getHistory it moves the resume point.
   */
  async fetchHistory(roomId: string, query: HistoryQuery = {}): Promise<WireMessage[]> {
    const body = await this.http<HistoryResult>('GET', historyPath(roomId, query));
    this.cursors.noteHistory(roomId, body.messages);
    return body.messages;
  }

  /** An authenticated JSON request to the server's HTTP API (`Authorization: Bearer <token>`). */
  http<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.api.request<T>(method, path, body);
  }
}
