import type { ContentFilter, ContentFilterContext, FilteredContent } from '../../interfaces';
import { isAsciiLetter, isAsciiDigit } from './text';

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
