import { StreamingError } from '../protocol/streaming-error';
import { BannedWordsFilter, HtmlSanitizer, UrlFilter, WhitespaceNormalizer } from './filters';
import type { ContentFilterContext } from '../interfaces';

const ctx: ContentFilterContext = { userId: 'u1', type: 'send_message', roomId: 'r1' };

/** The content a filter passes on, or the code and reason it refused with. */
function run(
  f: { filter: (c: ContentFilterContext, s: string, m: Record<string, unknown>) => unknown },
  s: string,
) {
  try {
    return (f.filter(ctx, s, {}) as { content: string }).content;
  } catch (e) {
    if (e instanceof StreamingError) return `REJECTED ${e.code}: ${e.message}`;
    throw e;
  }
}
const rejected = (out: string) => out.startsWith('REJECTED content_filtered');

describe('BannedWordsFilter', () => {
  const reject = new BannedWordsFilter({ words: ['spam', 'ass', 'Café', 'спам', 'über', 'buy now'] });

  it.each(['spam', 'Spam!', 'SPAM', 'this is spam.', '(spam)', 'spam_', 'ass', 'Ass?', 'kiss my ASS'])(
    'rejects %j',
    (s) => {
      if (s === 'spam_')
        expect(rejected(run(reject, s))).toBe(false); // `_` is a word character, as in \w
      else expect(run(reject, s)).toBe('REJECTED content_filtered: message contains a banned word');
    },
  );

  it.each(['class', 'glass', 'assassin', 'bass guitar', 'spammer', 'antispam', 'spam2', 'passé'])(
    'does not hit inside words: %j',
    (s) => expect(run(reject, s)).toBe(s),
  );

  it('uses Unicode word boundaries, not the ASCII-only \\b', () => {
    expect(rejected(run(reject, 'un CAFÉ noir'))).toBe(true);
    expect(rejected(run(reject, 'un cafe\u0301 noir'))).toBe(true); // decomposed é (NFD)
    expect(run(reject, 'deux cafés')).toBe('deux cafés');
    expect(rejected(run(reject, 'это СПАМ!'))).toBe(true);
    expect(run(reject, 'спамер')).toBe('спамер');
    expect(rejected(run(reject, 'Über alles'))).toBe(true); // \b would miss: Ü is not an ASCII word char
    expect(run(reject, 'éspam')).toBe('éspam'); // \b would hit: é is not an ASCII word char
    expect(run(reject, 'spamé')).toBe('spamé');
  });

  it('matches phrases across any whitespace', () => {
    expect(rejected(run(reject, 'BUY   now!'))).toBe(true);
    expect(rejected(run(reject, 'buy\nnow'))).toBe(true);
    expect(run(reject, 'buy nowhere')).toBe('buy nowhere');
  });

  it('masks instead of rejecting, one mask character per character', () => {
    const mask = new BannedWordsFilter({ words: ['spam', 'café'], mode: 'mask' });
    expect(run(mask, 'no spam, SPAM or Spam here; spammer ok')).toBe(
      'no ****, **** or **** here; spammer ok',
    );
    expect(run(mask, 'un CAFÉ')).toBe('un ****');
    expect(run(mask, 'clean')).toBe('clean');
    const hash = new BannedWordsFilter({ words: ['x'], mode: 'mask', maskChar: '#' });
    expect(run(hash, 'a x b')).toBe('a # b');
  });

  it('takes extra patterns (strings or regexes)', () => {
    const f = new BannedWordsFilter({
      words: [],
      patterns: [/\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b/, 'free\\s+money'],
    });
    expect(rejected(run(f, 'card 4111 1111 1111 1111'))).toBe(true);
    expect(rejected(run(f, 'FREE   money'))).toBe(true);
    expect(run(f, 'call 555-1234')).toBe('call 555-1234');
    const m = new BannedWordsFilter({ words: [], patterns: [/\d{3,}/], mode: 'mask' });
    expect(run(m, 'pin 1234 and 56')).toBe('pin **** and 56');
  });

  it('treats words literally and handles a custom reason', () => {
    const f = new BannedWordsFilter({ words: ['a.b', 'c++', '  ', ''], reason: 'nope' });
    expect(run(f, 'a.b')).toBe('REJECTED content_filtered: nope');
    expect(run(f, 'axb')).toBe('axb');
    expect(run(f, 'I like c++')).toBe('REJECTED content_filtered: nope');
    expect(run(new BannedWordsFilter({ words: [] }), 'anything')).toBe('anything');
  });

  it('keeps metadata', () => {
    expect(reject.filter(ctx, 'hello', { a: 1 })).toEqual({ content: 'hello', metadata: { a: 1 } });
  });
});

describe('WhitespaceNormalizer', () => {
  const n = new WhitespaceNormalizer();

  it.each([
    ['  hello  ', 'hello'],
    ['a \t\t  b', 'a b'],
    ['a\u00a0\u2003\u3000b', 'a b'],
    ['a\r\nb\rc', 'a\nb\nc'],
    ['a\u2028b\u2029c\u0085d', 'a\nb\nc\nd'],
    ['a\n\n\n\n\nb', 'a\n\nb'],
    ['a  \n   b', 'a\nb'],
    ['a\u0000b\u0007c\u001bd\u007fe\u009bf', 'abcdef'],
    ['\n\n  text \n\n', 'text'],
    ['a\u000bb\u000cc', 'a b c'],
    ['👨\u200d👩\u200d👧 ok', '👨\u200d👩\u200d👧 ok'],
    ['', ''],
  ])('%j → %j', (input, out) => expect(run(n, input)).toBe(out));

  it('caps newlines as configured, or joins lines', () => {
    expect(run(new WhitespaceNormalizer({ maxConsecutiveNewlines: 1 }), 'a\n\n\nb')).toBe('a\nb');
    expect(run(new WhitespaceNormalizer({ maxConsecutiveNewlines: 0 }), 'a \n\n b\nc')).toBe('a b c');
  });

  it('can refuse messages that end up empty', () => {
    const strict = new WhitespaceNormalizer({ rejectEmpty: true });
    expect(run(strict, ' \n\t\u0000 ')).toBe('REJECTED content_filtered: message is empty');
    expect(run(strict, ' x ')).toBe('x');
  });
});

describe('HtmlSanitizer', () => {
  it('escapes by default', () => {
    expect(run(new HtmlSanitizer(), `<b onclick="x">Tom & 'Jerry'</b>`)).toBe(
      '&lt;b onclick=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;',
    );
    expect(run(new HtmlSanitizer({ mode: 'escape' }), 'plain')).toBe('plain');
  });

  describe('strip', () => {
    const s = new HtmlSanitizer({ mode: 'strip' });
    it.each([
      ['<b>bold</b> and <i>italic</i>', 'bold and italic'],
      ['hi<script>alert(1)</script> there', 'hi there'],
      ['<STYLE>p{}</STYLE>text', 'text'],
      ['a<!-- secret -->b', 'ab'],
      ['<img src=x onerror=alert(1)>pic', 'pic'],
      ['x <img src=x onerror=alert(1)', 'x '],
      ['a < b and c > d', 'a < b and c > d'],
      ['1 <2', '1 <2'],
      ['<a href="https://x.y">link</a>', 'link'],
      ['<svg><script>alert(1)</script></svg>ok', 'ok'],
      ['before<script>never closed', 'before'],
    ])('%j → %j', (input, out) => expect(run(s, input)).toBe(out));

    it('does not let nested tags reassemble', () => {
      for (const input of [
        '<scr<script>x</script>ipt>alert(1)</script>',
        '<<b>script>alert(1)<</b>/script>',
        '<i<b>mg src=x onerror=alert(1)>',
      ]) {
        expect(run(s, input)).not.toMatch(/<[a-z/!?]/i);
      }
    });
  });
});

describe('UrlFilter', () => {
  const deny = new UrlFilter({ deny: ['evil.com', '*.Bad.ORG', 'https://worse.net/any/path'] });
  const allow = new UrlFilter({ allow: ['good.com', 'bücher.de'] });

  it.each([
    'see http://evil.com/x',
    'HTTPS://EVIL.COM',
    'http://evil.com:8080/path?q=1',
    'https://sub.evil.com/',
    'https://a.b.evil.com.',
    'http://good.com@evil.com/',
    'http://user:pass@evil.com',
    'www.evil.com/page',
    '//evil.com/x',
    'ftp://evil.com/file',
    'http://ev%69l.com',
    'http://ｅｖｉｌ.com',
    'https://x.bad.org',
    'https://bad.org',
    'http://worse.net',
    '(link: https://evil.com)',
    'http:\\\\evil.com',
  ])('deny list refuses %j', (s) => expect(rejected(run(deny, s))).toBe(true));

  it.each([
    'https://notevil.com',
    'https://evil.com.good.net',
    'http://evil.community',
    'evil.com without a scheme',
    'bob@evil.com',
    'no links at all',
    'http://good.com/evil.com',
    'http://good.com/?u=http:evil.com',
  ])('deny list lets %j through', (s) => expect(run(deny, s)).toBe(s));

  it.each([
    'https://good.com/path',
    'HTTP://GOOD.COM:443',
    'https://docs.good.com/x',
    'www.good.com',
    'visit https://good.com.',
    '(https://good.com)',
    'https://BÜCHER.de/x',
    'https://xn--bcher-kva.de',
    'plain text, e.g. file.txt',
    'http://evil.com@good.com',
  ])('allow list lets %j through', (s) => expect(run(allow, s)).toBe(s));

  it.each([
    'https://evil.com',
    'http://good.com@evil.com',
    'https://good.com.evil.com',
    'https://evilgood.com',
    'www.other.org',
    '//cdn.other.org/x.js',
    'http://evil.com\\@good.com',
    'http://[::1',
    'ok https://good.com but also https://evil.com',
  ])('allow list refuses %j', (s) => expect(rejected(run(allow, s))).toBe(true));

  it('names the host in the reason', () => {
    expect(run(allow, 'http://good.com@EVIL.com')).toBe(
      'REJECTED content_filtered: links to evil.com are not allowed',
    );
  });

  it('lets deny win over allow, and an empty allow list forbid every link', () => {
    const f = new UrlFilter({ allow: ['good.com'], deny: ['bad.good.com'] });
    expect(run(f, 'https://x.good.com')).toBe('https://x.good.com');
    expect(rejected(run(f, 'https://bad.good.com'))).toBe(true);
    const none = new UrlFilter({ allow: [] });
    expect(rejected(run(none, 'https://good.com'))).toBe(true);
    expect(run(none, 'just text')).toBe('just text');
  });

  it('ignores links it cannot parse without an allow list', () => {
    expect(run(deny, 'http://[::1')).toBe('http://[::1');
  });

  it('checks bare domains and e-mail domains when asked', () => {
    const bare = new UrlFilter({ deny: ['evil.com'], matchBareDomains: true });
    expect(rejected(run(bare, 'go to evil.com now'))).toBe(true);
    expect(rejected(run(bare, 'EVIL.COM/path'))).toBe(true);
    expect(rejected(run(bare, 'mail bob@evil.com'))).toBe(true);
    expect(run(bare, 'see notevil.com and file.txt')).toBe('see notevil.com and file.txt');
    expect(bare.hostsIn('a.b.cd and x.io:8080/p, not a.b.c')).toEqual(['a.b.cd', 'x.io']);
  });
});
