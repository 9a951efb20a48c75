import { ContentFilter, ContentFilterContext, contentFiltered, FilteredContent } from './content-filter';

/** Characters that make up a word: letters, combining marks, digits and `_` (Unicode-aware `\w`). */
const WORD_CHARS = '\\p{L}\\p{M}\\p{N}_';

/** Escape for use outside a character class (valid with the `u` flag). */
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Options of {@link BannedWordsFilter}. */
export interface BannedWordsOptions {
  /** Words or phrases, matched whole-word and case-insensitively (spaces in a phrase match any whitespace). */
  words: readonly string[];
  /** Extra regular expressions (strings compile with flags `iu`), matched anywhere. */
  patterns?: readonly (RegExp | string)[];
  /** `reject` the message (default) or `mask` each hit with `maskChar`. */
  mode?: 'reject' | 'mask';
  /** Default `*`, one per character of the hit. */
  maskChar?: string;
  /** Reason given when rejecting. Default `message contains a banned word`. */
  reason?: string;
}

/**
 * Refuses or masks banned words. Word boundaries are Unicode-aware (a word is a run
 * of letters, marks, digits and `_` in any script), unlike the ASCII-only `\b`: the
 * banned word `ass` hits `ass!` and `ASS` but not `class`, `glass` or `assassin`;
 * `café` hits `CAFÉ` but not `cafés`. Matching is on the NFC form; a masked message is
 * passed on in NFC, an untouched one as it came.
 */
export class BannedWordsFilter implements ContentFilter {
  private readonly regexes: RegExp[] = [];
  private readonly mode: 'reject' | 'mask';
  private readonly maskChar: string;
  private readonly reason: string;

  constructor(opts: BannedWordsOptions) {
    this.mode = opts.mode ?? 'reject';
    this.maskChar = opts.maskChar ?? '*';
    this.reason = opts.reason ?? 'message contains a banned word';
    const words = [
      ...new Set(opts.words.map((w) => w.normalize('NFC').trim().replace(/\s+/g, ' ')).filter(Boolean)),
    ].sort((a, b) => b.length - a.length);
    if (words.length > 0) {
      const alternatives = words.map((w) => w.split(' ').map(escapeRegExp).join('\\s+')).join('|');
      this.regexes.push(new RegExp(`(?<![${WORD_CHARS}])(?:${alternatives})(?![${WORD_CHARS}])`, 'giu'));
    }
    for (const p of opts.patterns ?? []) {
      this.regexes.push(
        typeof p === 'string'
          ? new RegExp(p, 'giu')
          : new RegExp(p.source, p.flags.includes('g') ? p.flags : `${p.flags}g`),
      );
    }
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    const text = content.normalize('NFC');
    if (this.mode === 'reject') {
      if (this.regexes.some((re) => text.search(re) !== -1)) throw contentFiltered(this.reason);
      return { content, metadata };
    }
    let masked = text;
    for (const re of this.regexes) {
      masked = masked.replace(re, (hit) => this.maskChar.repeat([...hit].length));
    }
    return { content: masked === text ? content : masked, metadata };
  }
}

/** Options of {@link WhitespaceNormalizer}. */
export interface WhitespaceNormalizerOptions {
  /** Longest run of line breaks kept (2 = one blank line); 0 joins everything on one line. Default 2. */
  maxConsecutiveNewlines?: number;
  /** Refuse a message that is empty after normalizing. Default `false`. */
  rejectEmpty?: boolean;
}

/**
 * Tidies whitespace: line breaks (`\r\n`, `\r`, U+0085, U+2028, U+2029) become `\n`;
 * control characters other than `\n` are removed (tab, vertical tab and form feed
 * count as spaces); every run of other whitespace (any Unicode space) becomes one
 * space; spaces next to a line break go; runs of line breaks are capped; the result
 * is trimmed.
 */
export class WhitespaceNormalizer implements ContentFilter {
  private readonly maxNewlines: number;
  private readonly rejectEmpty: boolean;

  constructor(opts: WhitespaceNormalizerOptions = {}) {
    this.maxNewlines = Math.max(0, Math.floor(opts.maxConsecutiveNewlines ?? 2));
    this.rejectEmpty = opts.rejectEmpty ?? false;
  }

  /** The normalized text. */
  normalize(content: string): string {
    let s = content
      .replace(/\r\n?|[\u0085\u2028\u2029]/g, '\n')
      .replace(/[\t\v\f]/g, ' ')
      .replace(/(?!\n)\p{Cc}/gu, '')
      .replace(/[^\S\n]+/g, ' ')
      .replace(/ ?\n ?/g, '\n');
    s =
      this.maxNewlines === 0
        ? s.replace(/\n+/g, ' ').replace(/ {2,}/g, ' ')
        : s.replace(new RegExp(`\\n{${this.maxNewlines + 1},}`, 'g'), '\n'.repeat(this.maxNewlines));
    return s.trim();
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    const normalized = this.normalize(content);
    if (this.rejectEmpty && normalized === '') throw contentFiltered('message is empty');
    return { content: normalized, metadata };
  }
}

/** Options of {@link HtmlSanitizer}. */
export interface HtmlSanitizerOptions {
  /**
   * `escape` (default): `& < > " '` become entities, lossless and safe to render as HTML.
   * `strip`: tags, comments and the content of script-like elements are removed.
   */
  mode?: 'escape' | 'strip';
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Elements whose content goes with them in `strip` mode. */
const RAW_ELEMENTS = 'script|style|iframe|object|embed|template|noscript|textarea|title|xmp|svg|math';

/**
 * Neutralizes HTML in message content. `strip` removes until nothing tag-like is
 * left (so `<scr<script>ipt>` cannot reassemble), drops an unterminated tag at the
 * end, and leaves plain `<` in text such as `a < b` alone; it is lossy for text like
 * `a<b c>d`. Clients must still escape what they render: `strip` output is text.
 */
export class HtmlSanitizer implements ContentFilter {
  private readonly mode: 'escape' | 'strip';

  constructor(opts: HtmlSanitizerOptions = {}) {
    this.mode = opts.mode ?? 'escape';
  }

  /** The sanitized text. */
  sanitize(content: string): string {
    if (this.mode === 'escape') return content.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
    const raw = new RegExp(`<(${RAW_ELEMENTS})\\b[\\s\\S]*?(?:<\\/\\1\\s*>|$)`, 'gi');
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
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    return { content: this.sanitize(content), metadata };
  }
}

/** Options of {@link UrlFilter}. */
export interface UrlFilterOptions {
  /** When set, links may only point to these hosts or their subdomains (an empty list forbids links). */
  allow?: readonly string[];
  /** Links to these hosts or their subdomains are refused (wins over `allow`). */
  deny?: readonly string[];
  /** Also check bare `host.tld[/path]` tokens (and e-mail domains), not only links. Default `false`. */
  matchBareDomains?: boolean;
}

/** `scheme://` or `scheme:\\` links (any scheme). */
const NAMED_ENTITIES: Record<string, string> = {
  quot: '"',
  amp: '&',
  lt: '<',
  gt: '>',
  apos: "'",
  nbsp: ' ',
};

/** Decode the HTML entities a sanitizer or a sender may have put in a text. */
export function decodeHtmlEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/giu, (whole, body: string) => {
    if (body[0] === '#') {
      const code =
        body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  });
}

const SCHEME_URL = String.raw`[a-z][a-z0-9+.\-]*:[\/\\]{2}[^\s<>"'\x60]+`;
/** Protocol-relative `//host...` links. */
const RELATIVE_URL = String.raw`(?<![\p{L}\p{N}:\/\\])\/\/[^\s<>"'\x60\/\\]+[^\s<>"'\x60]*`;
/** `www.host...` links. */
const WWW_URL = String.raw`(?<![\p{L}\p{N}_.\-@\/])www\.[^\s<>"'\x60]+`;
/** Bare `host.tld[:port][/path]`. */
const BARE_HOST = String.raw`(?<![\p{L}\p{N}_.\-\/])(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+\p{L}{2,}(?::\d+)?(?:[\/?#][^\s<>"'\x60]*)?(?![\p{L}\p{N}_\-])`;

/** Normalized host of a list entry (`Example.COM`, `*.example.com`, `https://example.com/x` → `example.com`). */
function normalizeHostEntry(entry: string): string {
  let e = entry
    .trim()
    .toLowerCase()
    .replace(/^\*?\.+/, '');
  if (!e.includes('://')) e = `http://${e}`;
  try {
    return stripDot(new URL(e).hostname);
  } catch {
    return stripDot(entry.trim().toLowerCase());
  }
}

const stripDot = (host: string): string => host.replace(/\.+$/, '');

const hostMatches = (host: string, list: readonly string[]): boolean =>
  list.some((h) => host === h || host.endsWith(`.${h}`));

/**
 * Refuses messages linking to unwanted hosts. Links are `scheme://...` (any scheme;
 * `\\` counts as `/`), protocol-relative `//host` and `www.host`, plus bare
 * `host.tld` with `matchBareDomains`. Hosts are read with the WHATWG URL parser, as
 * a browser would: case-folded, IDN to punycode, percent-decoded, trailing dot
 * dropped, port ignored, and `http://good.com@evil.com` is `evil.com` (the part
 * before `@` is user info). A host matches a list entry when it is that host or a
 * subdomain of it (`evilgood.com` does not match `good.com`). A deny-listed host is
 * refused; with an allow list, any other host is too, and so is a link the parser
 * cannot read.
 */
export class UrlFilter implements ContentFilter {
  private readonly allow?: string[];
  private readonly deny: string[];
  private readonly regex: RegExp;

  constructor(opts: UrlFilterOptions) {
    this.allow = opts.allow?.map(normalizeHostEntry).filter(Boolean);
    this.deny = (opts.deny ?? []).map(normalizeHostEntry).filter(Boolean);
    const parts = [SCHEME_URL, RELATIVE_URL, WWW_URL];
    if (opts.matchBareDomains) parts.push(BARE_HOST);
    this.regex = new RegExp(parts.map((p) => `(?:${p})`).join('|'), 'giu');
  }

  /** Hosts of the links in `content` (`null` for a link that cannot be parsed). */
  hostsIn(content: string): (string | null)[] {
    const hosts: (string | null)[] = [];
    // Links hidden behind HTML entities (an earlier HtmlSanitizer, or a sender) are checked as plain text.
    for (const m of decodeHtmlEntities(content).matchAll(this.regex)) {
      let candidate = m[0].replace(/[.,;:!?)\]}'"»”’>]+$/u, '');
      if (candidate.startsWith('//')) candidate = `http:${candidate}`;
      else if (!/^[a-z][a-z0-9+.-]*:[/\\]{2}/i.test(candidate)) candidate = `http://${candidate}`;
      try {
        const host = stripDot(new URL(candidate).hostname.toLowerCase());
        hosts.push(host === '' ? null : host);
      } catch {
        hosts.push(null);
      }
    }
    return hosts;
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    for (const host of this.hostsIn(content)) {
      if (host === null) {
        if (this.allow) throw contentFiltered('message contains a link that cannot be checked');
        continue;
      }
      if (hostMatches(host, this.deny)) throw contentFiltered(`links to ${host} are not allowed`);
      if (this.allow && !hostMatches(host, this.allow)) {
        throw contentFiltered(`links to ${host} are not allowed`);
      }
    }
    return { content, metadata };
  }
}
