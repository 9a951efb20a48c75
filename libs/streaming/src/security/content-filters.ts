import { contentFiltered } from './content-filter';
import type { ContentFilter, ContentFilterContext, FilteredContent } from '../interfaces';

/*
 * Every filter here sees every message, so each runs in time linear in the message
 * (no regular expression or loop that backtracks on crafted input).
 * The work is done by hand-written single-pass scanners; the few regular expressions
 * left are single character classes or literals that cannot backtrack.
 * `content-filters.adversarial.spec.ts` and `bench/content-filters.bench.ts` feed
 * each filter 64 KB built against its implementation.
 */

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** The code point that ends just before index `i` (-1 at the start). */
function codePointBefore(s: string, i: number): number {
  if (i <= 0) return -1;
  const c = s.charCodeAt(i - 1);
  if (isLowSurrogate(c) && i >= 2 && isHighSurrogate(s.charCodeAt(i - 2))) return s.codePointAt(i - 2)!;
  return c;
}

/** `\s` of JavaScript regular expressions (WhiteSpace and LineTerminator). */
function isSpace(c: number): boolean {
  if (c < 0x80) return c === 32 || (c >= 9 && c <= 13);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

const LETTER_OR_NUMBER = /[\p{L}\p{N}]/u;
const MARK = /\p{M}/u;

const isAsciiLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isAsciiDigit = (c: number): boolean => c >= 48 && c <= 57;

/** `[\p{L}\p{N}]` for one code point (-1: none). */
function isLetterOrNumber(cp: number): boolean {
  if (cp < 0x80) return cp >= 0 && (isAsciiLetter(cp) || isAsciiDigit(cp));
  return LETTER_OR_NUMBER.test(String.fromCodePoint(cp));
}

const WORD_CHAR = /[\p{L}\p{M}\p{N}_]/u;
const WORD_CHAR_AT = /[\p{L}\p{M}\p{N}_]/uy;
const MARK_AT = /\p{M}/uy;

/** A word character: a letter, combining mark, digit or `_` (Unicode-aware `\w`; -1: none). */
function isWordChar(cp: number): boolean {
  if (cp < 0x80) return cp === 95 || (cp >= 0 && (isAsciiLetter(cp) || isAsciiDigit(cp)));
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

/** {@link isWordChar} for the code point at `i` (false past the end). */
function isWordCharAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (!(c >= 0x80)) return c === 95 || isAsciiLetter(c) || isAsciiDigit(c); // NaN past the end: false
  WORD_CHAR_AT.lastIndex = i;
  return WORD_CHAR_AT.test(s);
}

/**
 * Longest run of combining marks normalized in one piece. Unicode normalization
 * sorts each run of combining marks, and V8 (ICU) does it by insertion: quadratic in
 * the run's length (a letter followed by 64 KB of alternating U+0301 U+0316 took a
 * second). UAX #15's stream-safe format allows no more than 30 in a row.
 */
const MAX_MARK_RUN = 30;

/**
 * `text.normalize('NFC')`, in time linear in the text: a run of more than
 * {@link MAX_MARK_RUN} combining marks is normalized {@link MAX_MARK_RUN} marks at a
 * time (as if a CGJ were put between the pieces, as in UAX #15's stream-safe format).
 * @internal exported for tests.
 */
export function normalizeNfc(text: string): string {
  let cuts: number[] | undefined;
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x300) {
      run = 0;
      continue;
    }
    MARK_AT.lastIndex = i;
    if (MARK_AT.test(text)) {
      if (++run > MAX_MARK_RUN) {
        (cuts ??= []).push(i);
        run = 1;
      }
    } else run = 0;
    if (isHighSurrogate(c) && isLowSurrogate(text.charCodeAt(i + 1))) i++;
  }
  if (!cuts) return text.normalize('NFC');
  let out = '';
  let from = 0;
  for (const cut of cuts) {
    out += text.slice(from, cut).normalize('NFC');
    from = cut;
  }
  return out + text.slice(from).normalize('NFC');
}

/*
 * Case-insensitive comparison as in a regular expression with flags `iu`: two code
 * points are equal when their simple case foldings are (CaseFolding.txt, C and S).
 * JavaScript has no case folding function; `caseFoldKey` maps every code point to one
 * member of its folding class, from toUpperCase/toLowerCase plus the exceptions below.
 * A spec checks it against the regular expression engine for every code point.
 */

/** Pairs that fold together although neither case mapping leads from one to the other (Unicode 15+). */
const EXTRA_FOLDS = new Map<number, number>(
  [
    [0x1fd3, 0x390],
    [0x1fe3, 0x3b0],
    [0xfb05, 0xfb06],
  ].filter(([a, b]) =>
    new RegExp(`^${String.fromCodePoint(a)}$`, 'iu').test(String.fromCodePoint(b)),
  ) as Array<[number, number]>,
);

const isOneCodePoint = (s: string): boolean =>
  s.length === 1 || (s.length === 2 && isHighSurrogate(s.charCodeAt(0)) && isLowSurrogate(s.charCodeAt(1)));

/**
 * One representative of the case-folding class of `cp`: two code points match each
 * other in a regular expression with flags `iu` exactly when their keys are equal.
 * @internal exported for tests.
 */
export function caseFoldKey(cp: number): number {
  if (cp < 0x80) return cp >= 65 && cp <= 90 ? cp + 32 : cp;
  // Uncased scripts: kana, CJK ideographs, Hangul syllables (no allocation for them).
  if ((cp >= 0x3040 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7a3)) return cp;
  if (cp === 0x131) return cp; // dotless ı: its uppercase I folds to i, which ı does not match
  const extra = EXTRA_FOLDS.get(cp);
  if (extra !== undefined) return extra;
  const c = String.fromCodePoint(cp);
  const upper = c.toUpperCase();
  if (isOneCodePoint(upper)) {
    const lowerOfUpper = upper.toLowerCase();
    if (isOneCodePoint(lowerOfUpper)) return lowerOfUpper.codePointAt(0)!;
  }
  const lower = c.toLowerCase();
  return isOneCodePoint(lower) ? lower.codePointAt(0)! : cp;
}

/** Options of {@link BannedWordsFilter}. */
export interface BannedWordsOptions {
  /** Words or phrases, matched whole-word and case-insensitively (spaces in a phrase match any whitespace). */
  words: readonly string[];
  /**
   * Extra regular expressions (strings compile with flags `iu`), matched anywhere. They
   * run as given: keep them free of nested or overlapping quantifiers, which backtrack.
   */
  patterns?: readonly (RegExp | string)[];
  /** `reject` the message (default) or `mask` each hit with `maskChar`. */
  mode?: 'reject' | 'mask';
  /** Default `*`, one per character of the hit. */
  maskChar?: string;
  /** Reason given when rejecting. Default `message contains a banned word`. */
  reason?: string;
}

/** A node of the banned-word trie: children by case-fold key, `space` for a run of whitespace. */
interface WordNode {
  next?: Map<number, WordNode>;
  space?: WordNode;
  /** A word ends here. */
  end?: boolean;
}

/**
 * Refuses or masks banned words. Word boundaries are Unicode-aware (a word is a run
 * of letters, marks, digits and `_` in any script), unlike the ASCII-only `\b`: the
 * banned word `ass` hits `ass!` and `ASS` but not `class`, `glass` or `assassin`;
 * `café` hits `CAFÉ` but not `cafés`. Where two banned words start at the same place,
 * the longer wins. Matching is on the NFC form; a masked message is passed on in NFC
 * (runs of more than 30 combining marks normalized 30 at a time), an untouched one as
 * it came. The words are kept in a trie, so a message is scanned once whatever the
 * size of the list.
 */
export class BannedWordsFilter implements ContentFilter {
  private readonly root: WordNode = {};
  private readonly patterns: RegExp[] = [];
  private readonly mode: 'reject' | 'mask';
  private readonly maskChar: string;
  private readonly reason: string;

  constructor(opts: BannedWordsOptions) {
    this.mode = opts.mode ?? 'reject';
    this.maskChar = opts.maskChar ?? '*';
    this.reason = opts.reason ?? 'message contains a banned word';
    for (const w of opts.words) {
      const word = w.normalize('NFC').trim().replace(/\s+/g, ' ');
      if (word) this.add(word);
    }
    for (const p of opts.patterns ?? []) {
      this.patterns.push(
        typeof p === 'string'
          ? new RegExp(p, 'giu')
          : new RegExp(p.source, p.flags.includes('g') ? p.flags : `${p.flags}g`),
      );
    }
  }

  private add(word: string): void {
    let node = this.root;
    for (let i = 0; i < word.length; i++) {
      const cp = word.codePointAt(i)!;
      if (cp > 0xffff) i++;
      if (cp === 32) {
        node = node.space ??= {};
        continue;
      }
      const key = caseFoldKey(cp);
      const next = (node.next ??= new Map<number, WordNode>());
      let child = next.get(key);
      if (!child) next.set(key, (child = {}));
      node = child;
    }
    node.end = true;
  }

  /**
   * End of the longest banned word starting at `p` and ending at a word boundary, or
   * -1. The walk is deterministic (a whitespace run is taken whole: a word has no
   * whitespace next to a space) and goes no further than the longest word reaches,
   * so a message costs at most its length times the longest word's (a run of
   * whitespace counting as one space, walked once per start that reaches it).
   */
  private matchAt(text: string, p: number): number {
    let node = this.root;
    let i = p;
    let end = -1;
    for (;;) {
      if (node.end && !isWordCharAt(text, i)) end = i;
      if (i >= text.length) return end;
      const cp = text.codePointAt(i)!;
      if (isSpace(cp)) {
        if (!node.space) return end;
        node = node.space;
        do i++;
        while (i < text.length && isSpace(text.charCodeAt(i)));
        continue;
      }
      const child = node.next?.get(caseFoldKey(cp));
      if (!child) return end;
      node = child;
      i += cp > 0xffff ? 2 : 1;
    }
  }

  /**
   * Calls `hit(start, end)` for each banned word in `text`, left to right, not
   * overlapping, starting only where the previous character is not a word character.
   * Stops when `hit` returns false.
   */
  private scan(text: string, hit: (start: number, end: number) => boolean): void {
    if (!this.root.next && !this.root.space) return;
    let afterWordChar = false;
    for (let p = 0; p < text.length;) {
      const cp = text.codePointAt(p)!;
      if (!afterWordChar) {
        const end = this.matchAt(text, p);
        if (end > p) {
          if (!hit(p, end)) return;
          p = end;
          afterWordChar = isWordChar(codePointBefore(text, end));
          continue;
        }
      }
      afterWordChar = isWordCharAt(text, p);
      p += cp > 0xffff ? 2 : 1;
    }
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    const text = normalizeNfc(content);
    if (this.mode === 'reject') {
      let found = false;
      this.scan(text, () => {
        found = true;
        return false;
      });
      if (found || this.patterns.some((re) => text.search(re) !== -1)) throw contentFiltered(this.reason);
      return { content, metadata };
    }
    const parts: string[] = [];
    let last = 0;
    this.scan(text, (start, end) => {
      let chars = 0; // code points, as [...hit].length
      for (let i = start; i < end; i++) {
        if (!isLowSurrogate(text.charCodeAt(i)) || !isHighSurrogate(text.charCodeAt(i - 1))) chars++;
      }
      parts.push(text.slice(last, start), this.maskChar.repeat(chars));
      last = end;
      return true;
    });
    let masked = last === 0 ? text : parts.join('') + text.slice(last);
    for (const re of this.patterns) {
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

/** What {@link WhitespaceNormalizer} makes of one UTF-16 unit: text, a space, a line break or nothing. */
const TEXT = 0;
const SPACE = 1;
const NEWLINE = 2;
const REMOVED = 3;

function whitespaceKind(c: number): number {
  if (c === 10 || c === 13 || c === 0x85 || c === 0x2028 || c === 0x2029) return NEWLINE;
  if (isSpace(c)) return SPACE; // includes tab, vertical tab and form feed
  if (c < 32 || (c >= 0x7f && c <= 0x9f)) return REMOVED; // other control characters (\p{Cc})
  return TEXT;
}

/**
 * Tidies whitespace: line breaks (`\r\n`, `\r`, U+0085, U+2028, U+2029) become `\n`;
 * control characters other than `\n` are removed (tab, vertical tab and form feed
 * count as spaces); every run of other whitespace (any Unicode space) becomes one
 * space; spaces next to a line break go; runs of line breaks are capped; the result
 * is trimmed. One pass over the text.
 */
export class WhitespaceNormalizer implements ContentFilter {
  private readonly maxNewlines: number;
  private readonly rejectEmpty: boolean;
  private readonly breaks: string[];

  constructor(opts: WhitespaceNormalizerOptions = {}) {
    this.maxNewlines = Math.max(0, Math.floor(opts.maxConsecutiveNewlines ?? 2));
    this.rejectEmpty = opts.rejectEmpty ?? false;
    this.breaks = Array.from({ length: Math.min(this.maxNewlines, 1000) + 1 }, (_, k) => '\n'.repeat(k));
  }

  /** What stands between two pieces of text for `newlines` line breaks and maybe spaces. */
  private separator(newlines: number): string {
    if (newlines === 0 || this.maxNewlines === 0) return ' ';
    const k = Math.min(newlines, this.maxNewlines);
    return k < this.breaks.length ? this.breaks[k] : '\n'.repeat(k);
  }

  /**
   * The normalized text. One pass: each stretch between two pieces of text (spaces,
   * line breaks, control characters) is read whole and replaced by what it
   * normalizes to; stretches that are already normalized are copied with the text.
   */
  normalize(content: string): string {
    const n = content.length;
    let out = '';
    let copyFrom = 0; // content[copyFrom, i) is still to be copied as it is
    let i = 0;
    let seenText = false;
    while (i < n) {
      if (whitespaceKind(content.charCodeAt(i)) === TEXT) {
        seenText = true;
        i++;
        continue;
      }
      const start = i;
      let newlines = 0;
      let space = false;
      for (; i < n; i++) {
        const c = content.charCodeAt(i);
        const kind = whitespaceKind(c);
        if (kind === TEXT) break;
        if (kind === SPACE) space = true;
        else if (kind === NEWLINE) {
          newlines++;
          if (c === 13 && content.charCodeAt(i + 1) === 10) i++;
        }
      }
      // Nothing before the first text or after the last (trimmed).
      const separator = !seenText || i === n ? '' : newlines > 0 || space ? this.separator(newlines) : '';
      if (i - start === separator.length && content.startsWith(separator, start)) continue;
      out += content.slice(copyFrom, start) + separator;
      copyFrom = i;
    }
    return copyFrom === 0 ? content : out + content.slice(copyFrom);
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

const HTML_ESCAPES: Record<string, string | undefined> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Elements whose content goes with them in `strip` mode. */
const RAW_ELEMENTS = new Set([
  'script',
  'style',
  'iframe',
  'object',
  'embed',
  'template',
  'noscript',
  'textarea',
  'title',
  'xmp',
  'svg',
  'math',
]);
const RAW_NAME_LENGTHS = new Set([...RAW_ELEMENTS].map((n) => n.length));
const MAX_RAW_NAME = Math.max(...RAW_NAME_LENGTHS);

/** `</name\s*>`, case-insensitive, for each raw element: the end of its content. */
const RAW_END = new Map([...RAW_ELEMENTS].map((n) => [n, new RegExp(`</${n}\\s*>`, 'gi')]));

/** `[A-Za-z0-9_]`: the ASCII word characters of `\b`. */
const isAsciiWordChar = (c: number): boolean => c === 95 || isAsciiLetter(c) || isAsciiDigit(c);

/**
 * Neutralizes HTML in message content. `strip` removes tags (`<` then a letter, `!`,
 * `?` or `/` and one of those, up to the next `>`), comments (`<!--` to `-->`) and
 * script-like elements with their content (`<script` to `</script>`), or to the end
 * when they are not closed; it leaves plain `<` in text such as `a < b` alone and is
 * lossy for text like `a<b c>d`. It is done in one pass with a stack of the open `<`:
 * removing a tag joins what was around it, and the result is scanned as joined, so
 * `<scr<script>ipt>` or `<<b>script>` cannot reassemble. Clients must still escape
 * what they render: `strip` output is text.
 */
export class HtmlSanitizer implements ContentFilter {
  private readonly mode: 'escape' | 'strip';

  constructor(opts: HtmlSanitizerOptions = {}) {
    this.mode = opts.mode ?? 'escape';
  }

  /** The sanitized text. */
  sanitize(content: string): string {
    if (this.mode === 'escape') return escapeHtml(content);
    return stripHtml(content);
  }

  filter(_ctx: ContentFilterContext, content: string, metadata: Record<string, unknown>): FilteredContent {
    return { content: this.sanitize(content), metadata };
  }
}

/** The `escape` mode: `& < > " '` as entities. */
function escapeHtml(content: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < content.length; i++) {
    const entity = HTML_ESCAPES[content[i]];
    if (entity === undefined) continue;
    out += content.slice(from, i) + entity;
    from = i + 1;
  }
  return from === 0 ? content : out + content.slice(from);
}

/**
 * The `strip` mode, in one pass. `out[0, len)` holds the result so far, with nothing
 * removable left in it; `open` holds the indexes in `out` of the `<` that no kept `>`
 * follows. Each unit of `content` is looked at once: a `>` closes the tag opened by
 * the last `<` (cut `out` back to it, which joins what was around the tag), `<!--`
 * and `<script` skip ahead to their end. A cut only removes what was pushed after
 * it, so the whole is linear.
 */
function stripHtml(content: string): string {
  if (!content.includes('<')) return content;
  const n = content.length;
  const out = new Uint16Array(n);
  let len = 0;
  const open: number[] = [];
  const cutTo = (p: number): void => {
    len = p;
    while (open.length > 0 && open[open.length - 1] >= p) open.pop();
  };
  /** `[a-z!?]`, case-insensitive, at `out[i]`. */
  const tagStartAt = (i: number): boolean =>
    i < len && (out[i] === 33 || out[i] === 63 || isAsciiLetter(out[i]));
  /** `out[p]` is `<` and starts a tag: `<` then `[a-z!?]` or `/[a-z!?]`. */
  const opensTag = (p: number): boolean => tagStartAt(p + 1) || (out[p + 1] === 47 && tagStartAt(p + 2));
  /** The raw element (`<script`...) that `out` ends with, as [index of `<`, name]. */
  const rawElementAtEnd = (): [number, string] | undefined => {
    let p = len - 1;
    while (p >= 0 && len - p <= MAX_RAW_NAME && isAsciiLetter(out[p])) p--;
    if (p < 0 || out[p] !== 60 || !RAW_NAME_LENGTHS.has(len - p - 1)) return undefined;
    const name = String.fromCharCode(...out.subarray(p + 1, len)).toLowerCase();
    return RAW_ELEMENTS.has(name) ? [p, name] : undefined;
  };
  let i = 0;
  while (i < n) {
    const c = content.charCodeAt(i);
    if (!isAsciiWordChar(c)) {
      // `<script` then a character that ends the name: drop everything up to `</script\s*>`.
      const raw = rawElementAtEnd();
      if (raw) {
        cutTo(raw[0]);
        const end = RAW_END.get(raw[1])!;
        end.lastIndex = i;
        i = end.exec(content) ? end.lastIndex : n;
        continue;
      }
    }
    if (c === 45 && len >= 3 && out[len - 1] === 45 && out[len - 2] === 33 && out[len - 3] === 60) {
      // `<!--`: drop everything up to `-->`.
      cutTo(len - 3);
      const end = content.indexOf('-->', i + 1);
      i = end < 0 ? n : end + 3;
      continue;
    }
    i++;
    if (c === 62) {
      const p = open.length > 0 ? open[open.length - 1] : -1;
      if (p >= 0 && opensTag(p)) {
        cutTo(p);
        continue;
      }
      open.length = 0; // no tag reaches back over a kept `>`
    } else if (c === 60) open.push(len);
    out[len++] = c;
  }
  // `<script` at the very end (`\b` holds there) goes as an element, then an unterminated tag.
  const raw = rawElementAtEnd();
  if (raw) cutTo(raw[0]);
  if (open.length > 0 && opensTag(open[open.length - 1])) len = open[open.length - 1];
  let result = '';
  for (let k = 0; k < len; k += 8192)
    result += String.fromCharCode(...out.subarray(k, Math.min(len, k + 8192)));
  return result;
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
