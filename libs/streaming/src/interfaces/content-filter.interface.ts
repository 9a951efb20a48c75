/** Who sends what where. */
export interface ContentFilterContext {
  userId: string;
  /** The request type: `send_message`, `edit_message`, `publish`, ... */
  type: string;
  roomId?: string;
  channel?: string;
}

/** What a filter passes on. */
export interface FilteredContent {
  content: string;
  metadata: Record<string, unknown>;
}

/**
 * A content filter: return the content and metadata to
 * pass on (rewritten or not), or throw a {@link StreamingError} to refuse the message:
 * `content_filtered` (see {@link contentFiltered}) for content, `invalid_message`
 * for malformed data. Anything else thrown refuses it as `internal`.
 */
export interface ContentFilter {
  filter(
    ctx: ContentFilterContext,
    content: string,
    metadata: Record<string, unknown>,
  ): Promise<FilteredContent> | FilteredContent;
}
