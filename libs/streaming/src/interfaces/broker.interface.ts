import type {
  HistoryQuery,
  MessageDraft,
  MessageMutation,
  MutationResult,
  StoredMessage,
  TopicHandler,
} from './backend-records';

/**
 * The broker port: pub/sub between nodes (one subscription per node per
 * topic) and each room's message log, whose append gives the seq and
 * publishes in one atomic step so every node sees a room in seq order.
 */
export interface Broker {
  /** True when other nodes may share this broker. */
  readonly distributed: boolean;

  publish(topic: string, payload: string): Promise<void>;
  subscribe(topic: string, handler: TopicHandler): Promise<void>;
  unsubscribe(topic: string): Promise<void>;

  /**
   * Gives the draft the room's next `seq` (1, 2, 3, ... gap-free), stores it and,
   * when `publishTopic` is set, publishes its `message` envelope there in the same
   * atomic step, so that every subscriber sees a room's messages in seq order.
   * Rejects with a `room_not_found` StreamingError when the room does not exist.
   */
  appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage>;
  getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]>;
  getMessage(roomId: string, messageId: string): Promise<StoredMessage | null>;
  updateMessage(roomId: string, messageId: string, mutation: MessageMutation): Promise<MutationResult | null>;
  /**
   * Threads: count one more reply to `parentId` atomically (`replyCount` + 1,
   * `lastReplyAt` the later of the stored one and `at`), whatever node races
   * it. Returns the updated parent, or null when it is unknown or deleted.
   */
  addReply(roomId: string, parentId: string, at: string): Promise<StoredMessage | null>;
  /** The last seq given out in the room (0 when none). */
  latestSeq(roomId: string): Promise<number>;
  /** The lowest seq still in history (latestSeq + 1 when history is empty). */
  oldestSeq(roomId: string): Promise<number>;
  /** Drops messages beyond `maxCount` and older than `olderThan` (epoch ms); returns how many. */
  trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number>;
  /**
   * Optional: `search_messages` through an index (the local SQLite store's FTS5
   * table). Candidates among the room's newest `window` messages, seq below
   * `before`, whose content has every one of `words` (lower-case, as
   * `wordsOf` splits text), newest first, at most `limit`. It may return
   * messages the search rule then refuses (deleted, past retention), never
   * miss one it accepts. Null (or no method): no index, the caller scans
   * {@link getHistory}.
   */
  searchMessages?(
    roomId: string,
    query: { words: string[]; limit: number; window: number; before?: number },
  ): Promise<StoredMessage[] | null>;
}

/** Topic carrying a room's events. */
export const roomTopic = (roomId: string): string => `room:${roomId}`;
/** Topic carrying events addressed to one user's connections. */
export const userTopic = (userId: string): string => `user:${userId}`;
/** Topic carrying changes to the list of public rooms (to every connection of every node). */
export const PUBLIC_ROOMS_TOPIC = 'rooms:public';
/** Topic carrying cluster-wide events. */
export const NODE_TOPIC = 'nodes';
/** Topic carrying the moderation actions of every node to the admin consoles. */
export const ADMIN_MODERATION_TOPIC = 'admin:moderation';
