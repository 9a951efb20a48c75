/**
 * Content filters on adversarial input: every bundled filter (every mode) fed
 * 64 KB (the default max_message_size) built against its implementation, the
 * inputs that made the old regular-expression filters quadratic (seconds per
 * message) and the worst ones for the single-pass scanners that replaced them.
 * Target: under 20 ms per call each. The unit-test counterpart, with more inputs
 * and a linearity check, is libs/streaming/src/security/content-filters.adversarial.spec.ts.
 *
 * Run (from the repository root; ts-node is not installed, so bundle first):
 *
 *   npx esbuild bench/content-filters.bench.ts --bundle --platform=node \
 *     --outfile=/tmp/bench-out/content-filters.bench.js --log-level=warning
 *   node /tmp/bench-out/content-filters.bench.js
 *
 * Its table is kept in bench/results/content-filters.md, which `npm run bench`
 * appends to bench/RESULTS.md.
 *
 * Variables: BENCH_FILTER_RUNS (timed calls per row, default 11; the table shows
 * their median, min and max), BENCH_FILTER_KB (input size, default 64).
 */
import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsIn, IsOptional, IsString, ValidateNested } from 'class-validator';
import { ContentFilterChain } from '../libs/streaming/src/security/content-filter';
import {
  BannedWordsFilter,
  decodeHtmlEntities,
  HtmlSanitizer,
  UrlFilter,
  WhitespaceNormalizer,
} from '../libs/streaming/src/security/filters';
import { MetadataValidator } from '../libs/streaming/src/security/message-validation';
import type { ContentFilter, ContentFilterContext } from '../libs/streaming/src/interfaces';

const RUNS = Math.max(1, Number(process.env.BENCH_FILTER_RUNS ?? 11));
const SIZE = Math.max(1, Number(process.env.BENCH_FILTER_KB ?? 64)) * 1024;
const TARGET_MS = 20;

const ctx: ContentFilterContext = { userId: 'u1', type: 'send_message', roomId: 'r1' };

/** `unit` repeated to exactly `n` UTF-16 units. */
const fill = (unit: string, n = SIZE): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
const third = Math.floor(SIZE / 3);

class ItemDto {
  @IsString() x!: string;
}
class MetaDto {
  @IsOptional() @IsIn(['text', 'image']) kind?: string;
  @IsOptional() @ValidateNested({ each: true }) @Type(() => ItemDto) items?: ItemDto[];
}

const WORDS = ['spam', 'ass', 'café', 'buy now', 'c++', 'a.b', 'free money now'];
const MANY = Array.from({ length: 5000 }, (_, i) => `badword${i.toString(36)}`);

type Run = (input: string) => unknown;
const use =
  (f: ContentFilter): Run =>
  (s) =>
    f.filter(ctx, s, {});
const metadata =
  (v: MetadataValidator<MetaDto>): Run =>
  (s) =>
    v.filter(ctx, '', JSON.parse(s) as Record<string, unknown>);

const strip = use(new HtmlSanitizer({ mode: 'strip' }));
const deny = use(new UrlFilter({ deny: ['evil.com'] }));
const allow = use(new UrlFilter({ allow: ['good.com'] }));
const denyBare = use(new UrlFilter({ deny: ['evil.com'], matchBareDomains: true }));
const validator = metadata(new MetadataValidator(MetaDto));
const whitelist = metadata(
  new MetadataValidator(MetaDto, { validatorOptions: { whitelist: true, forbidNonWhitelisted: true } }),
);
const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;

/** [filter, input name, run, input]. */
const CASES: Array<[string, string, Run, string]> = [
  [
    'BannedWordsFilter reject',
    '"a" + combining marks×n',
    use(new BannedWordsFilter({ words: WORDS })),
    'a' + fill('\u0301\u0316', SIZE - 1),
  ],
  [
    'BannedWordsFilter reject',
    'near misses',
    use(new BannedWordsFilter({ words: WORDS })),
    fill('spa spamm cafe buy no c+ '),
  ],
  [
    'BannedWordsFilter mask',
    '"spam "×k (all hits)',
    use(new BannedWordsFilter({ words: WORDS, mode: 'mask' })),
    fill('spam '),
  ],
  [
    'BannedWordsFilter mask',
    '"buy" + whitespace×n',
    use(new BannedWordsFilter({ words: WORDS, mode: 'mask' })),
    'buy' + fill(' \t', SIZE - 3),
  ],
  [
    'BannedWordsFilter reject, 5000 words',
    '"badword "×k',
    use(new BannedWordsFilter({ words: MANY })),
    fill('badword '),
  ],
  [
    'BannedWordsFilter mask, 5000 words',
    '"badwordzz badword1 "×k',
    use(new BannedWordsFilter({ words: MANY, mode: 'mask' })),
    fill('badwordzz badword1 '),
  ],
  ['WhitespaceNormalizer', '"a "×k', use(new WhitespaceNormalizer()), fill('a ')],
  ['WhitespaceNormalizer', '" \\n"×k', use(new WhitespaceNormalizer()), fill(' \n')],
  [
    'WhitespaceNormalizer max 0, rejectEmpty',
    '"\\r\\n \\u0000"×k',
    use(new WhitespaceNormalizer({ maxConsecutiveNewlines: 0, rejectEmpty: true })),
    fill('\r\n \u0000'),
  ],
  ['HtmlSanitizer escape', '"<"×n', use(new HtmlSanitizer()), fill('<')],
  ['HtmlSanitizer strip', '"<"×k + "a>"×k', strip, '<'.repeat(third) + 'a>'.repeat(third)],
  ['HtmlSanitizer strip', '"<scr"×k + "ipt>"×k', strip, '<scr'.repeat(SIZE >> 3) + 'ipt>'.repeat(SIZE >> 3)],
  ['HtmlSanitizer strip', '"<a <"×k', strip, fill('<a <')],
  ['HtmlSanitizer strip', '"<script>" + "</script "×k', strip, '<script>' + fill('</script ', SIZE - 8)],
  ['UrlFilter deny', '"a"×n', deny, fill('a')],
  ['UrlFilter deny', '"http://a" + "."×n + "b"', deny, 'http://a' + fill('.', SIZE - 9) + 'b'],
  ['UrlFilter deny', '"&#x41;"×k (decodes to "A"×k)', deny, fill('&#x41;')],
  ['UrlFilter deny', '"http://a.b "×k (many links)', deny, fill('http://a.b ')],
  ['UrlFilter allow', 'host "a" + combining marks×n', allow, 'http://a' + fill('\u0301\u0316', SIZE - 8)],
  ['UrlFilter allow', '"&" + "a"×n', allow, '&' + fill('a', SIZE - 1)],
  ['UrlFilter deny, bare domains', '"a."×k', denyBare, fill('a.')],
  ['UrlFilter deny, bare domains', '"a@b.co "×k', denyBare, fill('a@b.co ')],
  ['decodeHtmlEntities', '"&#x41;"×k', (s) => decodeHtmlEntities(s), fill('&#x41;')],
  [
    'MetadataValidator',
    'deep objects (JSON)',
    validator,
    '{"a":'.repeat(SIZE / 5) + '1' + '}'.repeat(SIZE / 5),
  ],
  ['MetadataValidator', 'many keys (JSON)', validator, keys(SIZE / 10)],
  ['MetadataValidator whitelist', 'many keys (JSON)', whitelist, keys(SIZE / 10)],
  ['MetadataValidator whitelist', '999 keys (9 KB, under the limit)', whitelist, keys(999)],
  [
    'chain of all of them',
    '"<"×k + "a>"×k',
    use(
      new ContentFilterChain([
        new WhitespaceNormalizer(),
        new BannedWordsFilter({ words: WORDS, mode: 'mask' }),
        new HtmlSanitizer({ mode: 'strip' }),
        new UrlFilter({ deny: ['evil.com'], matchBareDomains: true }),
        new HtmlSanitizer(),
      ]),
    ),
    '<'.repeat(third) + 'a>'.repeat(third),
  ],
];

/** Milliseconds of one call; a refusal counts as a normal outcome. */
async function time(run: Run, input: string): Promise<number> {
  const start = process.hrtime.bigint();
  try {
    await run(input);
  } catch {
    // refused: the filter did its job
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main(): Promise<void> {
  const rows: Array<Record<string, string | number>> = [];
  for (const [filter, input, run, text] of CASES) {
    await time(run, text.slice(0, 1024)); // warm-up
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await time(run, text));
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1];
    rows.push({
      filter,
      input,
      'ms/call (median)': +median.toFixed(2),
      min: +times[0].toFixed(2),
      max: +times[times.length - 1].toFixed(2),
      [`< ${TARGET_MS} ms`]: median < TARGET_MS ? 'yes' : 'NO',
    });
  }
  console.log(
    `Content filters, ${SIZE / 1024} KB of adversarial input, median of ${RUNS} (node ${process.version}):`,
  );
  console.table(rows);
}

void main();
