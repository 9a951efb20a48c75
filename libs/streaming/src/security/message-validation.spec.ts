import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUrl, Max, Min, ValidateNested } from 'class-validator';
import { StreamingError } from '../protocol/streaming-error';
import { ContentFilterChain } from './content-filter';
import { WhitespaceNormalizer } from './filters';
import {
  createMetadataValidator,
  describeViolations,
  METADATA_MAX_DEPTH,
  METADATA_MAX_ENTRIES,
  MetadataValidator,
} from './message-validation';
import type { ContentFilterContext } from '../interfaces';

class AttachmentDto {
  @IsUrl({ require_protocol: true }) url!: string;
  @IsOptional() @IsString() name?: string;
}

class ChatMetadataDto {
  @IsIn(['text', 'image']) kind!: string;
  @IsOptional() @IsInt() @Min(0) @Max(5) priority?: number;
  @IsOptional() @ValidateNested({ each: true }) @Type(() => AttachmentDto) attachments?: AttachmentDto[];
}

const send: ContentFilterContext = { userId: 'u', type: 'send_message', roomId: 'r' };

async function refusal(p: Promise<unknown>): Promise<StreamingError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(StreamingError);
  return e as StreamingError;
}

describe('createMetadataValidator', () => {
  const v = createMetadataValidator(ChatMetadataDto);

  it('passes valid metadata through unchanged', async () => {
    const metadata = {
      kind: 'image',
      priority: 2,
      attachments: [{ url: 'https://example.com/a.png' }],
      extra: true,
    };
    const out = await v.filter(send, 'hi', metadata);
    expect(out.content).toBe('hi');
    expect(out.metadata).toBe(metadata);
  });

  it('refuses with invalid_message listing every violation, nested ones by path', async () => {
    const e = await refusal(
      Promise.resolve(
        v.filter(send, 'hi', {
          kind: 'video',
          priority: 9,
          attachments: [{ url: 'nope' }, { url: 'https://ok.io' }],
        }),
      ),
    );
    expect(e.code).toBe('invalid_message');
    expect(e.message).toMatch(/^invalid metadata: /);
    expect(e.message).toContain('kind: kind must be one of the following values: text, image');
    expect(e.message).toContain('priority: priority must not be greater than 5');
    expect(e.message).toContain('attachments.0.url: url must be a URL address');
    expect(e.message).not.toContain('attachments.1');
  });

  it('treats missing metadata as an empty object', async () => {
    const e = await refusal(
      Promise.resolve(v.filter(send, 'hi', undefined as unknown as Record<string, unknown>)),
    );
    expect(e.message).toContain('kind:');
  });

  it('validates send_message and publish by default, not edit_message', async () => {
    await refusal(Promise.resolve(v.filter({ userId: 'u', type: 'publish', channel: 'c' }, '', {})));
    expect(await v.filter({ userId: 'u', type: 'edit_message', roomId: 'r' }, 'x', {})).toEqual({
      content: 'x',
      metadata: {},
    });
    const onlyPublish = createMetadataValidator(ChatMetadataDto, { types: ['publish'] });
    expect((await onlyPublish.filter(send, 'x', {})).content).toBe('x');
  });

  it('strips or forbids unknown properties when asked', async () => {
    const strip = createMetadataValidator(ChatMetadataDto, { validatorOptions: { whitelist: true } });
    expect((await strip.filter(send, 'x', { kind: 'text', evil: 1 })).metadata).toEqual({ kind: 'text' });
    const forbid = createMetadataValidator(ChatMetadataDto, {
      validatorOptions: { whitelist: true, forbidNonWhitelisted: true },
    });
    const e = await refusal(Promise.resolve(forbid.filter(send, 'x', { kind: 'text', evil: 1 })));
    expect(e.message).toContain('evil: property evil should not exist');
  });

  it('caps the list of violations', async () => {
    const few = new MetadataValidator(ChatMetadataDto, { maxListed: 1 });
    const e = await refusal(few.filter(send, 'x', { kind: 'no', priority: -1 }));
    expect(e.message).toMatch(/; and 1 more$/);
  });

  it('works as one filter of a chain', async () => {
    const chain = new ContentFilterChain([new WhitespaceNormalizer(), v]);
    expect(await chain.filter(send, ' hi ', { kind: 'text' })).toEqual({
      content: 'hi',
      metadata: { kind: 'text' },
    });
    await expect(chain.filter(send, 'hi', { kind: 1 })).rejects.toMatchObject({ code: 'invalid_message' });
  });

  it('refuses metadata too deep or too big before validating it (bounded cost)', async () => {
    const nested = (depth: number): Record<string, unknown> => {
      let m: Record<string, unknown> = { kind: 'text' };
      for (let i = 1; i < depth; i++) m = { kind: 'text', n: m };
      return m;
    };
    expect(METADATA_MAX_DEPTH).toBe(32);
    expect((await v.filter(send, 'x', nested(32))).content).toBe('x');
    // Deep enough to overflow class-transformer's recursion: refused, not an internal error.
    for (const depth of [33, 20_000]) {
      const e = await refusal(Promise.resolve(v.filter(send, 'x', nested(depth))));
      expect(e.code).toBe('invalid_message');
      expect(e.message).toBe('invalid metadata: nested deeper than 32 levels');
    }
    expect(METADATA_MAX_ENTRIES).toBe(1000);
    const keys = (n: number): Record<string, unknown> => ({
      kind: 'text',
      ...Object.fromEntries(Array.from({ length: n - 1 }, (_, i) => [`k${i}`, 0])),
    });
    expect((await v.filter(send, 'x', keys(1000))).content).toBe('x');
    const e = await refusal(Promise.resolve(v.filter(send, 'x', keys(1001))));
    expect(e.message).toBe('invalid metadata: more than 1000 keys and array elements');
    // Counted over every level, arrays included.
    const items = { kind: 'text', attachments: Array.from({ length: 500 }, () => ({ url: 'https://a.io' })) };
    expect((await refusal(Promise.resolve(v.filter(send, 'x', items)))).message).toMatch(/more than 1000/);
    const roomy = new MetadataValidator(ChatMetadataDto, { maxDepth: 40, maxEntries: 5000 });
    expect((await roomy.filter(send, 'x', nested(40))).content).toBe('x');
    expect((await roomy.filter(send, 'x', items)).content).toBe('x');
    const cyclic: Record<string, unknown> = { kind: 'text' };
    cyclic.self = cyclic;
    await refusal(Promise.resolve(v.filter(send, 'x', cyclic)));
  });

  it('describeViolations falls back to "invalid" for errors without constraints', () => {
    expect(describeViolations([{ property: 'a', children: [] }])).toEqual(['a: invalid']);
  });
});
