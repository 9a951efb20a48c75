import fc from 'fast-check';
import { StreamingError } from '../protocol/streaming-error';
import {
  BannedWordsFilter,
  caseFoldKey,
  decodeHtmlEntities,
  HtmlSanitizer,
  normalizeNfc,
  UrlFilter,
  WhitespaceNormalizer,
} from './filters';
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

/*
 * The filters used to be chains of regular expressions, which backtrack on crafted
 * input (quadratic; see content-filters.adversarial.spec.ts). They are now single-pass
 * scanners meant to behave exactly the same; these are the old implementations, fine
 * on the short random inputs below, that the new ones are checked against.
 */
const legacy = {
  whitespace(content: string, maxNewlines: number): string {
    let s = content
      .replace(/\r\n?|[\u0085\u2028\u2029]/g, '\n')
      .replace(/[\t\v\f]/g, ' ')
      .replace(/(?!\n)\p{Cc}/gu, '')
      .replace(/[^\S\n]+/g, ' ')
      .replace(/ ?\n ?/g, '\n');
    s =
      maxNewlines === 0
        ? s.replace(/\n+/g, ' ').replace(/ {2,}/g, ' ')
        : s.replace(new RegExp(`\\n{${maxNewlines + 1},}`, 'g'), '\n'.repeat(maxNewlines));
    return s.trim();
  },

  /** BannedWordsFilter: the masked text, or null when the reject mode would refuse. */
  bannedWords(words: string[], content: string, mode: 'reject' | 'mask'): string | null {
    const esc = (w: string) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const list = [
      ...new Set(words.map((w) => w.normalize('NFC').trim().replace(/\s+/g, ' ')).filter(Boolean)),
    ];
    list.sort((a, b) => b.length - a.length);
    const alternatives = list.map((w) => w.split(' ').map(esc).join('\\s+')).join('|');
    const re = new RegExp(`(?<![\\p{L}\\p{M}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{M}\\p{N}_])`, 'giu');
    const text = content.normalize('NFC');
    if (mode === 'reject') return text.search(re) === -1 ? content : null;
    const masked = text.replace(re, (hit) => '*'.repeat([...hit].length));
    return masked === text ? content : masked;
  },

  hostsIn(content: string, matchBareDomains: boolean): (string | null)[] {
    const parts = [
      String.raw`[a-z][a-z0-9+.\-]*:[\/\\]{2}[^\s<>"'\x60]+`,
      String.raw`(?<![\p{L}\p{N}:\/\\])\/\/[^\s<>"'\x60\/\\]+[^\s<>"'\x60]*`,
      String.raw`(?<![\p{L}\p{N}_.\-@\/])www\.[^\s<>"'\x60]+`,
    ];
    if (matchBareDomains) {
      parts.push(
        String.raw`(?<![\p{L}\p{N}_.\-\/])(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+\p{L}{2,}(?::\d+)?(?:[\/?#][^\s<>"'\x60]*)?(?![\p{L}\p{N}_\-])`,
      );
    }
    const re = new RegExp(parts.map((p) => `(?:${p})`).join('|'), 'giu');
    const hosts: (string | null)[] = [];
    for (const m of decodeHtmlEntities(content).matchAll(re)) {
      let candidate = m[0].replace(/[.,;:!?)\]}'"»”’>]+$/u, '');
      if (candidate.startsWith('//')) candidate = `http:${candidate}`;
      else if (!/^[a-z][a-z0-9+.-]*:[/\\]{2}/i.test(candidate)) candidate = `http://${candidate}`;
      try {
        const host = new URL(candidate).hostname.toLowerCase().replace(/\.+$/, '');
        hosts.push(host === '' ? null : host);
      } catch {
        hosts.push(null);
      }
    }
    return hosts;
  },

  /** HtmlSanitizer strip: remove until nothing tag-like is left. */
  strip(content: string): string {
    const raw =
      /<(script|style|iframe|object|embed|template|noscript|textarea|title|xmp|svg|math)\b[\s\S]*?(?:<\/\1\s*>|$)/gi;
    let s = content;
    let previous: string;
    do {
      previous = s;
      s = s
        .replace(/<!--[\s\S]*?(?:-->|$)/g, '')
        .replace(raw, '')
        .replace(/<\/?[a-z!?][^<>]*>/gi, '');
    } while (s !== previous);
    return s.replace(/<\/?[a-z!?][^<>]*$/i, '');
  },
};

/** Strings of up to `max` pieces drawn from `pieces`. */
const textOf = (pieces: string[], max = 16) =>
  fc.array(fc.constantFrom(...pieces), { maxLength: max }).map((a) => a.join(''));

describe('the single-pass filters agree with the regular expressions they replace', () => {
  it('WhitespaceNormalizer', () => {
    const pieces = [
      'a',
      'b',
      'é',
      ' ',
      '  ',
      '\t',
      '\n',
      '\r',
      '\r\n',
      '\v',
      '\f',
      '\u0000',
      '\u0007',
      '\u007f',
    ];
    pieces.push('\u0085', '\u009f', '\u00a0', '\u1680', '\u2000', '\u200a', '\u200b', '\u2028', '\u2029');
    pieces.push('\u202f', '\u205f', '\u3000', '\ufeff', '\u180e', '\ud83d\ude00');
    const normalizers = [0, 1, 2, 3].map((m) => new WhitespaceNormalizer({ maxConsecutiveNewlines: m }));
    fc.assert(
      fc.property(textOf(pieces), (s) => {
        normalizers.forEach((n, m) => expect(n.normalize(s)).toBe(legacy.whitespace(s, m)));
      }),
      { numRuns: 3000 },
    );
  });

  it('BannedWordsFilter, both modes', () => {
    const words = ['spam', 'ass', 'café', 'buy now', 'c++', 'a.b', 'ΣΑΣ', 'straße', 'ſs', 'spam spam', 'a'];
    words.push('a a a', '_x', 'x_', 'K', 'ıi', '\u{1d400}b', '.net', 'e\u0301t\u00e9');
    const pieces = ['spam', 'SPAM', 'ass', 'a', 'A', ' ', '  ', '\n', '.', 'b', 'c', '+', '++', 'caf', 'é'];
    pieces.push('e\u0301', 'É', 'buy', 'now', 'NOW', 'σας', 'ς', 'Σ', 'ΣΑΣ', 'STRASSE', 'straße', 'STRAẞE');
    pieces.push('ſ', 's', 'S', '_', 'x', 'K', 'k', 'ı', 'I', 'i', 'İ', '\u{1d400}', '\u{1d41a}', '-', 'net');
    pieces.push('!', '\u00a0', '\u0301', 't', '\ud800');
    const reject = new BannedWordsFilter({ words });
    const mask = new BannedWordsFilter({ words, mode: 'mask' });
    fc.assert(
      fc.property(textOf(pieces), (s) => {
        expect(run(reject, s)).toBe(legacy.bannedWords(words, s, 'reject') ?? run(reject, s + '\u0000'));
        expect(run(mask, s)).toBe(legacy.bannedWords(words, s, 'mask'));
        expect(rejected(run(reject, s))).toBe(legacy.bannedWords(words, s, 'reject') === null);
      }),
      { numRuns: 5000 },
    );
  });

  it('UrlFilter.hostsIn, with and without bare domains', () => {
    const pieces = [
      'a',
      'b',
      'Z',
      '1',
      '8',
      '.',
      '-',
      '_',
      ':',
      '/',
      '\\',
      '?',
      '#',
      '@',
      ' ',
      '\n',
      ',',
      ')',
    ];
    pieces.push(
      'w',
      'www.',
      'WWW.',
      'http',
      '://',
      '//',
      ':\\\\',
      'é',
      '\u0301',
      '\u{1d400}',
      '\u017f',
      '\u212a',
    );
    pieces.push('"', '<', '>', '&amp;', '&#58;', '&#x2F;', '%41', 'com', 'evil.com', 'xn--', 'ab.cd', '.b');
    const deny = new UrlFilter({ deny: ['evil.com'] });
    const bare = new UrlFilter({ deny: ['evil.com'], matchBareDomains: true });
    fc.assert(
      fc.property(textOf(pieces, 20), (s) => {
        expect(deny.hostsIn(s)).toEqual(legacy.hostsIn(s, false));
        expect(bare.hostsIn(s)).toEqual(legacy.hostsIn(s, true));
      }),
      { numRuns: 5000 },
    );
  });

  // Where removing tags forms a comment or script-like element, the old fixpoint and
  // the scanner may end it at different places (see "reads a comment ... as written"
  // below); on inputs where every one of them is written out, they agree.
  it.each([
    ['tags only', ['<', '>', '/', 'a', 'b', '?', ' ', '-', 'x', '<b>', '</b>', '<a ', '</', '=', '"', '1']],
    [
      'tags and comments',
      ['<', '>', '/', 'a', 'b', ' ', '-', '-->', '<!--', '<!-- x -->', '<b>', '</b>', '<a '],
    ],
    [
      'tags and script-like elements',
      [
        '<',
        '>',
        '/',
        'a',
        'b',
        ' ',
        '<script>',
        '</script>',
        '<style >',
        '</STYLE\t>',
        '<svg',
        '</svg >',
        '<b>',
      ],
    ],
  ])('HtmlSanitizer strip, %s', (_name, pieces) => {
    const strip = new HtmlSanitizer({ mode: 'strip' });
    fc.assert(
      fc.property(textOf(pieces, 20), (s) => {
        expect(strip.sanitize(s)).toBe(legacy.strip(s));
      }),
      { numRuns: 4000 },
    );
  });
});

describe('HtmlSanitizer strip, scanned in one pass', () => {
  const s = new HtmlSanitizer({ mode: 'strip' });

  it('removes tags nested to any depth, and what they reassemble', () => {
    expect(s.sanitize('<'.repeat(1000) + 'a>'.repeat(1000) + 'ok')).toBe('ok');
    expect(s.sanitize('x' + '<'.repeat(500) + 'b>'.repeat(499) + 'script>alert(1)</script>y')).toBe('xy');
    expect(s.sanitize('<sc<b>ri<i>pt>alert(1)</script>ok')).toBe('ok');
    expect(s.sanitize('<!<b>-- hidden -->shown')).toBe('shown');
    expect(s.sanitize('<b <!-- > -->x>y')).toBe('y');
    expect(s.sanitize('<b>a</b> > c')).toBe('a > c');
  });

  it('never leaves a whole tag, a comment or a script-like element behind', () => {
    const pieces = ['<', '>', '/', 'a', 'B', '!', '?', '-', ' ', '\n', 'scr', 'ipt', 'svg', 'style', '<!--'];
    pieces.push('-->', '</', '<b>', '<script>', '</script >', '=', '"', 'é');
    fc.assert(
      fc.property(textOf(pieces, 24), (input) => {
        const out = s.sanitize(input);
        expect(out).not.toMatch(/<\/?[a-z!?][^<>]*>/i);
        expect(out).not.toContain('<!--');
        expect(out).not.toMatch(/<(script|style|svg)\b/i);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads a comment or script-like element that removing tags put together from the text as written', () => {
    // The old fixpoint removed tags inside first, then looked for the end again; the
    // scanner looks for the end in the text as sent, as a browser would.
    expect(s.sanitize('<scr<b>ipt>x</script>y')).toBe('y'); // was '' (its </script> went as a tag)
    expect(s.sanitize('<!<b>-- <a -->y -->')).toBe('y -->'); // was ''
    expect(s.sanitize('<!<b>-- a -<i>-> b')).toBe(''); // was ' b'
    // Inside a script, a comment does not hide </script> (again as in a browser).
    expect(s.sanitize('<script>a<!--</script>-->b')).toBe('-->b'); // was ''
  });
});

describe('BannedWordsFilter matching', () => {
  it('matches case-insensitively as a regular expression with flags iu would, for every code point', () => {
    // caseFoldKey(a) === caseFoldKey(b) exactly when /a/iu matches b.
    const esc = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
    const cased: number[] = [];
    const uncased: string[] = [];
    const wrongKeys: number[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      if (c.toUpperCase() !== c || c.toLowerCase() !== c) cased.push(cp);
      else {
        uncased.push(c);
        if (caseFoldKey(cp) !== cp) wrongKeys.push(cp);
      }
    }
    expect(wrongKeys).toEqual([]);
    const classes = new Map<number, number[]>();
    for (const cp of cased) {
      const key = caseFoldKey(cp);
      if (!new RegExp(`^${esc(String.fromCodePoint(cp))}$`, 'iu').test(String.fromCodePoint(key))) {
        wrongKeys.push(cp);
      }
      classes.set(key, [...(classes.get(key) ?? []), cp]);
    }
    expect(wrongKeys).toEqual([]);
    // Each class against every cased code point at once: it matches its members only.
    const all = String.fromCodePoint(...cased);
    const classOf = (members: number[], flags: string) =>
      new RegExp(`[${members.map((m) => esc(String.fromCodePoint(m))).join('')}]`, flags);
    const split = [...classes.values()].filter(
      (members) => all.match(classOf(members, 'giu'))!.length !== members.length,
    );
    expect(split).toEqual([]);
    // And no uncased code point matches a cased one (keys of uncased ones are themselves).
    expect(uncased.join('').match(classOf(cased, 'giu'))).toBeNull();
  });

  it('folds the way regular expressions do, not only like toLowerCase', () => {
    const f = new BannedWordsFilter({ words: ['σας', 'strasse', 'kelvin', 'ſun'], mode: 'mask' });
    expect(run(f, 'ΣΑΣ σαΣ σας ς')).toBe('*** *** *** ς');
    expect(run(f, 'ſtraſſe STRASSE straße')).toBe('******* ******* straße'); // ß is not ss
    expect(run(f, '\u212aELVIN')).toBe('******'); // Kelvin sign
    expect(run(f, 'SUN')).toBe('***');
    expect(run(new BannedWordsFilter({ words: ['i'], mode: 'mask' }), 'I ı İ i')).toBe('* ı İ *');
  });

  it('masks the longest word where two start at the same place', () => {
    const f = new BannedWordsFilter({ words: ['buy', 'buy now', 'buy now please'], mode: 'mask' });
    expect(run(f, 'buy  NOW please! buy now, buy nowhere')).toBe('***************! *******, *** nowhere');
  });

  it('checks a long list in one pass', () => {
    const words = Array.from({ length: 5000 }, (_, i) => `badword${i.toString(36)}`);
    const f = new BannedWordsFilter({ words, mode: 'mask' });
    expect(run(f, 'badword badwordzzz BADWORD1A badwordz1a badword0')).toBe(
      'badword badwordzzz ********* badwordz1a ********',
    );
  });

  it('normalizes long runs of combining marks in pieces (linear), other text as NFC', () => {
    expect(normalizeNfc('cafe\u0301 A\u030a')).toBe('café Å');
    const zalgo = 'a' + '\u0316\u0301'.repeat(20); // 40 marks
    expect(normalizeNfc(zalgo)).toBe(zalgo.slice(0, 31).normalize('NFC') + zalgo.slice(31).normalize('NFC'));
    expect(normalizeNfc('e' + '\u0301'.repeat(30))).toBe(('e' + '\u0301'.repeat(30)).normalize('NFC'));
    const f = new BannedWordsFilter({ words: ['café'], mode: 'mask' });
    expect(run(f, `${zalgo} cafe\u0301`)).toBe(`${normalizeNfc(zalgo)} ****`);
  });
});

describe('UrlFilter on hostile hosts', () => {
  const deny = new UrlFilter({ deny: ['evil.com'] });
  const allow = new UrlFilter({ allow: ['good.com'] });

  it('does not let the URL parser normalize a host with a long run of combining marks', () => {
    // IDNA normalization is quadratic in such a run, and such a label has more than 63
    // characters in punycode: no DNS name. The link cannot be read.
    const marks = (k: number) => '\u0301\u0316'.repeat(k / 2);
    expect(deny.hostsIn(`http://a${marks(100)}.evil.com`)).toEqual([
      expect.stringMatching(/^xn--.*\.evil\.com$/),
    ]);
    expect(deny.hostsIn(`http://a${marks(102)}.evil.com/x`)).toEqual([null]);
    expect(deny.hostsIn(`http://a${'%CC%81'.repeat(101)}.com`)).toEqual([null]);
    expect(deny.hostsIn(`http://a${'\uff9e\u0301'.repeat(51)}.com`)).toEqual([null]);
    expect(rejected(run(allow, `https://a${marks(200)}.com`))).toBe(true);
    // In the path, or in a scheme without IDNA, marks are harmless.
    expect(deny.hostsIn(`http://evil.com/${marks(200)}`)).toEqual(['evil.com']);
    expect(deny.hostsIn(`foo://a${marks(200)}.evil.com`)).toEqual([expect.stringMatching(/\.evil\.com$/)]);
  });

  it('still sees a host behind characters IDNA drops, however many', () => {
    for (const ignored of ['\ufe0f', '\u00ad', '\u034f', '\u200b', '\u{e0100}']) {
      expect(rejected(run(deny, `http://evil${ignored.repeat(300)}.com`))).toBe(true);
    }
  });

  it('trims a long run of trailing punctuation and dots', () => {
    expect(deny.hostsIn('see http://evil.com' + '.'.repeat(5000))).toEqual(['evil.com']);
    expect(deny.hostsIn('http://a' + '.'.repeat(5000) + 'b.evil.com')).toEqual([
      expect.stringMatching(/evil\.com$/),
    ]);
    expect(deny.hostsIn('(http://evil.com/x' + ').'.repeat(3000))).toEqual(['evil.com']);
  });
});
