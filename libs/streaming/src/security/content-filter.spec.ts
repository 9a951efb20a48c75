import { StreamingError } from '../protocol/streaming-error';
import { ContentFilterChain, contentFiltered } from './content-filter';
import { BannedWordsFilter, HtmlSanitizer, WhitespaceNormalizer } from './filters';
import type { ContentFilter, ContentFilterContext } from '../interfaces';

const ctx: ContentFilterContext = { userId: 'u1', type: 'send_message', roomId: 'r1' };

/** A filter that records its calls and appends a tag. */
const tagger = (tag: string, calls: string[]): ContentFilter => ({
  filter: async (_c, content, metadata) => {
    calls.push(tag);
    return { content: `${content}${tag}`, metadata: { ...metadata, [tag]: true } };
  },
});

describe('ContentFilterChain', () => {
  it('runs filters in order, each on the previous output (sync and async alike)', async () => {
    const calls: string[] = [];
    const sync: ContentFilter = {
      filter: (_c, content, metadata) => ({ content: content.toUpperCase(), metadata }),
    };
    const chain = new ContentFilterChain([tagger('a', calls), sync, tagger('b', calls)]);
    expect(chain.size).toBe(3);
    expect(await chain.filter(ctx, 'x', { m: 1 })).toEqual({
      content: 'XAb',
      metadata: { m: 1, a: true, b: true },
    });
    expect(calls).toEqual(['a', 'b']);
  });

  it('stops at the first refusal', async () => {
    const calls: string[] = [];
    const refuse: ContentFilter = {
      filter: () => {
        throw contentFiltered('nope');
      },
    };
    const chain = new ContentFilterChain([tagger('a', calls), refuse, tagger('b', calls)]);
    const err = await chain.filter(ctx, 'x', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamingError);
    expect((err as StreamingError).toData()).toEqual({ code: 'content_filtered', message: 'nope' });
    expect(calls).toEqual(['a']);
  });

  it('order matters: normalize before matching, escape after masking', async () => {
    const mask = new BannedWordsFilter({ words: ['bad word'], mode: 'mask' });
    const normalizeFirst = new ContentFilterChain([new WhitespaceNormalizer(), mask, new HtmlSanitizer()]);
    expect((await normalizeFirst.filter(ctx, '  a  bad\t\tword <b>  ', {})).content).toBe(
      'a ******** &lt;b&gt;',
    );
    const escapeFirst = new ContentFilterChain([
      new HtmlSanitizer(),
      new BannedWordsFilter({ words: ['lt'] }),
    ]);
    await expect(escapeFirst.filter(ctx, 'a < b', {})).rejects.toMatchObject({ code: 'content_filtered' });
    const escapeLast = new ContentFilterChain([
      new BannedWordsFilter({ words: ['lt'] }),
      new HtmlSanitizer(),
    ]);
    expect((await escapeLast.filter(ctx, 'a < b', {})).content).toBe('a &lt; b');
  });

  it('passes everything through when empty', async () => {
    const chain = new ContentFilterChain();
    expect(await chain.filter(ctx, ' raw ', { a: 1 })).toEqual({ content: ' raw ', metadata: { a: 1 } });
    expect(await chain.filter(ctx, 'x')).toEqual({ content: 'x', metadata: {} });
  });

  it('fails loudly (not as content_filtered) on a filter that returns nothing', async () => {
    const broken = { filter: () => undefined } as unknown as ContentFilter;
    await expect(new ContentFilterChain([broken]).filter(ctx, 'x', {})).rejects.toThrow(/returned no/);
  });

  it('hands the context to each filter', async () => {
    const seen: ContentFilterContext[] = [];
    const spy: ContentFilter = {
      filter: (c, content, metadata) => {
        seen.push(c);
        return { content, metadata };
      },
    };
    await new ContentFilterChain([spy]).filter({ userId: 'u', type: 'publish', channel: 'news' }, 'x', {});
    expect(seen).toEqual([{ userId: 'u', type: 'publish', channel: 'news' }]);
  });

  describe('filterPublication', () => {
    const chain = new ContentFilterChain([
      new WhitespaceNormalizer(),
      new BannedWordsFilter({ words: ['spam'] }),
    ]);
    const pctx: ContentFilterContext = { userId: 'u', type: 'publish', channel: 'news' };

    it('filters data.content when it is a string and keeps the rest of data', async () => {
      expect(await chain.filterPublication(pctx, { content: '  hi  there ', n: 1 })).toEqual({
        data: { content: 'hi there', n: 1 },
        metadata: undefined,
      });
      await expect(chain.filterPublication(pctx, { content: 'SPAM' })).rejects.toMatchObject({
        code: 'content_filtered',
      });
    });

    it('leaves data without string content untouched, but still runs filters on metadata', async () => {
      const data = { price: 3, content: { nested: 'spam' } };
      expect(await chain.filterPublication(pctx, data, { a: 1 })).toEqual({ data, metadata: { a: 1 } });
      const meta = new ContentFilterChain([
        { filter: (_c, content, metadata) => ({ content, metadata: { ...metadata, checked: true } }) },
      ]);
      expect(await meta.filterPublication(pctx, { x: 1 })).toEqual({
        data: { x: 1 },
        metadata: { checked: true },
      });
    });

    it('is a no-op without filters', async () => {
      const data = { content: '  raw ' };
      expect(await new ContentFilterChain([]).filterPublication(pctx, data)).toEqual({
        data,
        metadata: undefined,
      });
    });
  });
});
