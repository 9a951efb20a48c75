import { contentFiltered } from '../content-filter';
import type { ContentFilter, ContentFilterContext, FilteredContent } from '../../interfaces';
import { isSpace } from './text';

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
