import { StreamingError } from '../protocol/streaming-error';
import type { ContentFilterContext, FilteredContent, ContentFilter } from '../interfaces';

/** The error a filter throws to refuse a message: `content_filtered` with a human reason. */
export function contentFiltered(reason: string): StreamingError {
  return new StreamingError('content_filtered', reason);
}

/**
 * Runs filters one after the other, each on the previous one's output; the first
 * refusal stops the chain. A chain is itself a {@link ContentFilter}.
 */
export class ContentFilterChain implements ContentFilter {
  private readonly filters: readonly ContentFilter[];

  constructor(filters: readonly ContentFilter[] = []) {
    this.filters = [...filters];
  }

  /** Number of filters. */
  get size(): number {
    return this.filters.length;
  }

  async filter(
    ctx: ContentFilterContext,
    content: string,
    metadata: Record<string, unknown> = {},
  ): Promise<FilteredContent> {
    let current: FilteredContent = { content, metadata };
    for (const f of this.filters) {
      const next = await f.filter(ctx, current.content, current.metadata);
      if (!next || typeof next.content !== 'string' || typeof next.metadata !== 'object' || !next.metadata) {
        throw new Error(`content filter ${f.constructor.name} returned no {content, metadata}`);
      }
      current = next;
    }
    return current;
  }

  /**
   * Filters a channel publication: `data.content` when it is a string;
   * other data passes through untouched, though the
   * filters still see (and may validate or rewrite) `metadata`.
   */
  async filterPublication(
    ctx: ContentFilterContext,
    data: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<{ data: Record<string, unknown>; metadata?: Record<string, unknown> }> {
    if (this.filters.length === 0) return { data, metadata };
    const content = data.content;
    const out = await this.filter(ctx, typeof content === 'string' ? content : '', metadata ?? {});
    return {
      data: typeof content === 'string' ? { ...data, content: out.content } : data,
      metadata: metadata === undefined && Object.keys(out.metadata).length === 0 ? undefined : out.metadata,
    };
  }
}
