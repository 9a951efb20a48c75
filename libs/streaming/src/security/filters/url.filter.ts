import { contentFiltered } from '../content-filter';
import type { ContentFilter, ContentFilterContext, FilteredContent } from '../../interfaces';
import {
  isHighSurrogate,
  isLowSurrogate,
  codePointBefore,
  isSpace,
  MARK,
  isAsciiLetter,
  isAsciiDigit,
  isLetterOrNumber,
} from './text';

/** Options of {@link UrlFilter}. */
export interface UrlFilterOptions {
  /** When set, links may only point to these hosts or their subdomains (an empty list forbids links). */
  allow?: readonly string[];
  /** Links to these hosts or their subdomains are refused (wins over `allow`). */
  deny?: readonly string[];
  /** Also check bare `host.tld[/path]` tokens (and e-mail domains), not only links. Default `false`. */
  matchBareDomains?: boolean;
}

/** Entity names {@link decodeHtmlEntities} knows. */
const NAMED_ENTITIES: Record<string, string> = {
  quot: '"',
  amp: '&',
  lt: '<',
  gt: '>',
  apos: "'",
  nbsp: ' ',
};

/**
 * Decode the HTML entities a sanitizer or a sender may have put in a text. Linear:
 * each `&` starts one attempt, whose scan ends at the first character that is not
 * a letter, digit or `#`.
 */
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

/** `[^\s<>"'\x60]`: a character of a link. */
const isLinkChar = (c: number): boolean =>
  !(isSpace(c) || c === 60 || c === 62 || c === 34 || c === 39 || c === 96 || Number.isNaN(c));
/** `[a-z]` with flags `iu`, which adds ſ (U+017F) and the Kelvin sign (U+212A). */
const isSchemeLetter = (c: number): boolean => isAsciiLetter(c) || c === 0x17f || c === 0x212a;
/** `[a-z0-9+.\-]` with flags `iu`. */
const isSchemeChar = (c: number): boolean =>
  isSchemeLetter(c) || isAsciiDigit(c) || c === 43 || c === 46 || c === 45;
const isSlash = (c: number): boolean => c === 47 || c === 92;

const LN = 1; // \p{L} or \p{N}
const L = 2; // \p{L}
/** `\p{L}` and `\p{N}` at `lastIndex` (sticky: no substring per character). */
const LETTER_AT = /\p{L}/uy;
const NUMBER_AT = /\p{N}/uy;

/** `end[i]`: the first index at or after `i` whose unit fails `test` (`end[n]` = n). */
function runEnds(n: number, test: (i: number) => boolean): Int32Array {
  const end = new Int32Array(n + 1);
  end[n] = n;
  for (let i = n - 1; i >= 0; i--) end[i] = test(i) ? end[i + 1] : i;
  return end;
}

/**
 * The links in a text, in one pass: exactly what this pattern finds with flags `giu`
 * (leftmost match first; at one place, the first alternative that matches):
 *
 *     SCHEME    [a-z][a-z0-9+.\-]*:[\/\\]{2}[^\s<>"'`]+
 *     RELATIVE  (?<![\p{L}\p{N}:\/\\])\/\/[^\s<>"'`\/\\]+[^\s<>"'`]*
 *     WWW       (?<![\p{L}\p{N}_.\-@\/])www\.[^\s<>"'`]+
 *     BARE      (?<![\p{L}\p{N}_.\-\/])(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+
 *               \p{L}{2,}(?::\d+)?(?:[\/?#][^\s<>"'`]*)?(?![\p{L}\p{N}_\-])   (with matchBareDomains)
 *
 * As a regular expression this backtracks: SCHEME rescans the rest of a run of
 * scheme characters from each of its letters (`aaaa…`: quadratic). Here the ends of
 * runs are computed once, right to left, so each alternative is decided in constant
 * time at a given place, except BARE, which walks the labels of a host; but a walk
 * starts only after a character that is not part of a host and its labels are not
 * walked again (every place inside them fails BARE's look-behind).
 */
class LinkScanner {
  private readonly n: number;
  private readonly linkEnd: Int32Array;
  private readonly schemeEnd: Int32Array;
  private readonly cls?: Uint8Array;
  private readonly labelEnd?: Int32Array;
  private readonly letterEnd?: Int32Array;
  private readonly digitEnd?: Int32Array;

  constructor(
    private readonly text: string,
    bare: boolean,
  ) {
    const n = (this.n = text.length);
    this.linkEnd = runEnds(n, (i) => isLinkChar(text.charCodeAt(i)));
    this.schemeEnd = runEnds(n, (i) => isSchemeChar(text.charCodeAt(i)));
    if (!bare) return;
    // Classes per code point, stored on both units of a surrogate pair.
    const cls = (this.cls = new Uint8Array(n + 1));
    for (let i = 0; i < n; i++) {
      const u = text.charCodeAt(i);
      if (u < 0x80) {
        cls[i] = isAsciiLetter(u) ? L | LN : isAsciiDigit(u) ? LN : 0;
        continue;
      }
      LETTER_AT.lastIndex = i;
      NUMBER_AT.lastIndex = i;
      const c = LETTER_AT.test(text) ? L | LN : NUMBER_AT.test(text) ? LN : 0;
      cls[i] = c;
      if (isHighSurrogate(u) && isLowSurrogate(text.charCodeAt(i + 1))) cls[++i] = c;
    }
    this.labelEnd = runEnds(n, (i) => (cls[i] & LN) !== 0 || text.charCodeAt(i) === 45);
    this.letterEnd = runEnds(n, (i) => (cls[i] & L) !== 0);
    this.digitEnd = runEnds(n, (i) => isAsciiDigit(text.charCodeAt(i)));
  }

  /** The links, in order. */
  links(): string[] {
    const { text, n } = this;
    const found: string[] = [];
    for (let p = 0; p < n;) {
      let end = this.scheme(p);
      if (end < 0) end = this.relative(p);
      if (end < 0) end = this.www(p);
      if (end < 0 && this.cls) end = this.bare(p);
      if (end > p) {
        found.push(text.slice(p, end));
        p = end;
      } else p += isHighSurrogate(text.charCodeAt(p)) && isLowSurrogate(text.charCodeAt(p + 1)) ? 2 : 1;
    }
    return found;
  }

  private code(i: number): number {
    return this.text.charCodeAt(i); // NaN past the end
  }

  private scheme(p: number): number {
    if (!isSchemeLetter(this.code(p))) return -1;
    const q = this.schemeEnd[p];
    if (this.code(q) !== 58 || !isSlash(this.code(q + 1)) || !isSlash(this.code(q + 2))) return -1;
    return isLinkChar(this.code(q + 3)) ? this.linkEnd[q + 3] : -1;
  }

  private relative(p: number): number {
    if (this.code(p) !== 47 || this.code(p + 1) !== 47) return -1;
    const c = this.code(p + 2);
    if (!isLinkChar(c) || isSlash(c)) return -1;
    const before = codePointBefore(this.text, p);
    if (before === 58 || isSlash(before) || isLetterOrNumber(before)) return -1;
    return this.linkEnd[p + 2];
  }

  private www(p: number): number {
    if ((this.code(p) | 32) !== 119 || (this.code(p + 1) | 32) !== 119 || (this.code(p + 2) | 32) !== 119) {
      return -1;
    }
    if (this.code(p + 3) !== 46 || !isLinkChar(this.code(p + 4))) return -1;
    const before = codePointBefore(this.text, p);
    if (before === 95 || before === 46 || before === 45 || before === 64 || before === 47) return -1;
    if (isLetterOrNumber(before)) return -1;
    return this.linkEnd[p + 4];
  }

  private bare(p: number): number {
    const cls = this.cls!;
    if (!(cls[p] & LN)) return -1;
    if (p > 0) {
      const b = this.code(p - 1);
      if (cls[p - 1] & LN || b === 95 || b === 46 || b === 45 || b === 47) return -1;
    }
    // The labels: each a run of letters, digits and `-`, starting and ending with a
    // letter or digit, then a dot. Where each ends is forced, so the regular
    // expression's backtracking only ever tries fewer of them.
    const afterDots: number[] = [];
    let i = p;
    while (cls[i] & LN) {
      const q = this.labelEnd![i];
      if (this.code(q) !== 46 || !(cls[q - 1] & LN)) break;
      afterDots.push(q + 1);
      i = q + 1;
    }
    for (let k = afterDots.length - 1; k >= 0; k--) {
      const end = this.topLevel(afterDots[k]);
      if (end >= 0) return end;
    }
    return -1;
  }

  /** `\p{L}{2,}(?::\d+)?(?:[\/?#][^\s<>"'`]*)?(?![\p{L}\p{N}_\-])` at `t`: its end, or -1. */
  private topLevel(t: number): number {
    const e = this.letterEnd![t];
    if (e - t < 2 || (e - t === 2 && isHighSurrogate(this.code(t)))) return -1; // fewer than 2 letters
    // Fewer letters would leave a letter next, which nothing after may follow.
    if (this.code(e) === 58 && isAsciiDigit(this.code(e + 1))) {
      const afterPort = this.digitEnd![e + 1];
      if (this.isPathStart(afterPort)) return this.linkEnd[afterPort + 1];
      // Without the port, the `:` passes the look-ahead.
      return this.continuesHost(afterPort) ? e : afterPort;
    }
    if (this.isPathStart(e)) return this.linkEnd[e + 1];
    return this.continuesHost(e) ? -1 : e;
  }

  private isPathStart(i: number): boolean {
    const c = this.code(i);
    return c === 47 || c === 63 || c === 35;
  }

  /** `[\p{L}\p{N}_\-]` at `i`. */
  private continuesHost(i: number): boolean {
    return i < this.n && ((this.cls![i] & LN) !== 0 || this.code(i) === 95 || this.code(i) === 45);
  }
}

/** Characters trimmed from the end of a link: `[.,;:!?)\]}'"»”’>]`. */
const TRAILING_PUNCTUATION = new Set([...'.,;:!?)]}\'"\u00bb\u201d\u2019>'].map((ch) => ch.charCodeAt(0)));

function trimTrailingPunctuation(link: string): string {
  let end = link.length;
  while (end > 0 && TRAILING_PUNCTUATION.has(link.charCodeAt(end - 1))) end--;
  return end === link.length ? link : link.slice(0, end);
}

/** `^[a-z][a-z0-9+.-]*:[/\\]{2}` with flag `i` (ASCII only). */
function startsWithScheme(link: string): boolean {
  if (!isAsciiLetter(link.charCodeAt(0))) return false;
  let i = 1;
  for (; i < link.length; i++) {
    const c = link.charCodeAt(i);
    if (!(isAsciiLetter(c) || isAsciiDigit(c) || c === 43 || c === 46 || c === 45)) break;
  }
  return link.charCodeAt(i) === 58 && isSlash(link.charCodeAt(i + 1)) && isSlash(link.charCodeAt(i + 2));
}

/** Schemes whose hosts the URL parser maps and normalizes (IDNA); other schemes have opaque hosts. */
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);

/**
 * Longest run of combining marks a host may have. The URL parser normalizes hosts
 * (IDNA: map, then NFC), which is quadratic in a run of combining marks. A label with
 * more than 100 marks has more than 63 characters in punycode, too long for DNS: such
 * a host cannot be reached, and is treated as a link that cannot be read.
 */
const MAX_HOST_MARK_RUN = 100;

/** Characters IDNA maps to nothing: they neither count in nor break a run of marks. */
const isIgnoredInHost = (cp: number): boolean =>
  cp === 0xad ||
  cp === 0x34f ||
  (cp >= 0x180b && cp <= 0x180f) ||
  cp === 0x200b ||
  cp === 0x2060 ||
  cp === 0x2064 ||
  (cp >= 0xfe00 && cp <= 0xfe0f) ||
  cp === 0xfeff ||
  (cp >= 0x1bca0 && cp <= 0x1bca3) ||
  (cp >= 0xe0100 && cp <= 0xe01ef);

const isHexDigit = (b: number): boolean => isAsciiDigit(b) || ((b | 32) >= 97 && (b | 32) <= 102);

/** Percent-decoding, then UTF-8 decoding with replacement, as the URL parser does to a host. */
function percentDecode(s: string): string {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length);
  let k = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 37 && isHexDigit(bytes[i + 1]) && isHexDigit(bytes[i + 2])) {
      out[k++] = parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
      i += 2;
    } else out[k++] = bytes[i];
  }
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(out.subarray(0, k));
}

/** Whether the host of `link` (which starts with a scheme) has more than {@link MAX_HOST_MARK_RUN} marks in a row. */
function hostHasLongMarkRun(link: string): boolean {
  const colon = link.indexOf(':');
  if (!SPECIAL_SCHEMES.has(link.slice(0, colon).toLowerCase())) return false;
  let start = colon + 1;
  while (isSlash(link.charCodeAt(start))) start++;
  let end = start;
  for (; end < link.length; end++) {
    const c = link.charCodeAt(end);
    if (isSlash(c) || c === 63 || c === 35) break;
  }
  let host = link.slice(start, end);
  host = host.slice(host.lastIndexOf('@') + 1);
  if (host.length <= MAX_HOST_MARK_RUN) return false;
  if (host.includes('%')) host = percentDecode(host);
  let run = 0;
  for (let i = 0; i < host.length; i++) {
    const cp = host.codePointAt(i)!;
    if (cp > 0xffff) i++;
    if (isIgnoredInHost(cp)) continue;
    // U+FF9E and U+FF9F (halfwidth voiced marks) are letters that IDNA maps to combining marks.
    if (cp >= 0x300 && (cp === 0xff9e || cp === 0xff9f || MARK.test(String.fromCodePoint(cp)))) {
      if (++run > MAX_HOST_MARK_RUN) return true;
    } else run = 0;
  }
  return false;
}

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

/** Without its trailing dots (a loop: `/\.+$/` is quadratic on a long run of dots). */
function stripDot(host: string): string {
  let end = host.length;
  while (end > 0 && host.charCodeAt(end - 1) === 46) end--;
  return end === host.length ? host : host.slice(0, end);
}

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
 * cannot read (or whose host has a run of more than 100 combining marks, which no
 * DNS name has). Links are found in one linear pass (see {@link LinkScanner}).
 */
export class UrlFilter implements ContentFilter {
  private readonly allow?: string[];
  private readonly deny: string[];
  private readonly bare: boolean;

  constructor(opts: UrlFilterOptions) {
    this.allow = opts.allow?.map(normalizeHostEntry).filter(Boolean);
    this.deny = (opts.deny ?? []).map(normalizeHostEntry).filter(Boolean);
    this.bare = opts.matchBareDomains ?? false;
  }

  /** Hosts of the links in `content` (`null` for a link that cannot be parsed). */
  hostsIn(content: string): (string | null)[] {
    const hosts: (string | null)[] = [];
    // Links hidden behind HTML entities (an earlier HtmlSanitizer, or a sender) are checked as plain text.
    for (const link of new LinkScanner(decodeHtmlEntities(content), this.bare).links()) {
      let candidate = trimTrailingPunctuation(link);
      if (candidate.startsWith('//')) candidate = `http:${candidate}`;
      else if (!startsWithScheme(candidate)) candidate = `http://${candidate}`;
      if (hostHasLongMarkRun(candidate)) {
        hosts.push(null);
        continue;
      }
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
