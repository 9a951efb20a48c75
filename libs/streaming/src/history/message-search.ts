import { Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import type { Broker, StoredMessage } from '../interfaces';
import { StreamingError } from '../protocol/streaming-error';
import { wordsOf } from '../protocol/search-words';
import { WireMessage, messageToWire } from '../protocol/wire';
import { RoomService } from '../rooms/room.service';
import { InjectBroker, InjectStreamingOptions } from '../streaming.constants';
import { retentionCutoff } from './retention';

/** Default and largest number of results of `search_messages`. */
export const DEFAULT_SEARCH_LIMIT = 20;
export const MAX_SEARCH_LIMIT = 100;
/** Longest query, in characters. */
export const MAX_SEARCH_QUERY = 500;
const SCAN_PAGE = 200;

export { wordsOf };

/**
 * A predicate for the matching rule of `search_messages`: the content
 * contains every word of the query as a whole word, case-insensitively
 * (`cat` matches "The cat." but not "concatenate" or "cats").
 */
export function searchMatcher(query: string): (content: string) => boolean {
  const wanted = [...new Set(wordsOf(query))];
  return (content) => {
    const have = new Set(wordsOf(content));
    return wanted.every((w) => have.has(w));
  };
}

/**
 * `search_messages` (PROTOCOL.md §10): the newest messages of a room whose
 * current content matches every word of the query. Members only. It scans
 * the room's retained history from the newest message back, a page at a
 * time, so it reads at most `max_history_messages` messages a call, on every
 * backend alike; deleted messages never match, an edited one only by its
 * current content, and messages past retention are never returned. A broker
 * with a search index (`Broker.searchMessages`: the local SQLite store's
 * FTS5 table) gives the candidates instead, and the same rule confirms them.
 */
@Injectable()
export class MessageSearchService {
  constructor(
    @InjectBroker() private readonly broker: Broker,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly rooms: RoomService,
  ) {}

  async search(userId: string, roomId: string, query: string, limit?: number): Promise<WireMessage[]> {
    if (!this.options.enableMessageHistory) {
      throw new StreamingError('feature_disabled', 'message history is disabled on this server');
    }
    if (wordsOf(query).length === 0) {
      throw new StreamingError('invalid_message', '"query" must contain at least one word');
    }
    await this.rooms.requirePermission(roomId, userId, 'read');
    const max = Math.max(1, Math.min(limit ?? DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT));
    const matches = searchMatcher(query);
    const cutoff = retentionCutoff(this.options);
    const keep = (m: StoredMessage): boolean => !m.deleted && m.timestamp >= cutoff && matches(m.content);
    const found: StoredMessage[] = [];
    if (await this.fromIndex(roomId, query, max, keep, found)) return found.map(messageToWire);
    let before: number | undefined;
    for (let scanned = 0; found.length < max && scanned < this.options.maxHistoryMessages;) {
      const page = await this.broker.getHistory(roomId, { limit: SCAN_PAGE, before });
      for (let i = page.length - 1; i >= 0 && found.length < max; i--) {
        if (keep(page[i])) found.push(page[i]);
      }
      scanned += page.length;
      if (page.length < SCAN_PAGE || page[0].seq <= 1) break;
      before = page[0].seq;
    }
    return found.map(messageToWire);
  }

  /**
   * The same search through the broker's index (`Broker.searchMessages`), when
   * it has one: candidates among exactly the messages the scan reads (whole
   * pages until `max_history_messages`), newest first, each confirmed by the
   * same `keep` rule. False (nothing found yet) when there is no index.
   */
  private async fromIndex(
    roomId: string,
    query: string,
    max: number,
    keep: (m: StoredMessage) => boolean,
    found: StoredMessage[],
  ): Promise<boolean> {
    if (!this.broker.searchMessages) return false;
    const words = [...new Set(wordsOf(query))];
    const window = Math.ceil(this.options.maxHistoryMessages / SCAN_PAGE) * SCAN_PAGE;
    for (let before: number | undefined; ;) {
      const page = await this.broker.searchMessages(roomId, { words, limit: max, window, before });
      if (page === null) return false;
      for (const m of page) if (found.length < max && keep(m)) found.push(m);
      if (found.length >= max || page.length < max) return true;
      before = page[page.length - 1].seq;
    }
  }
}
