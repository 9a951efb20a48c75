import { contentFiltered } from '../content-filter';
import type { ContentFilter, ContentFilterContext, FilteredContent } from '../../interfaces';
import {
  isHighSurrogate,
  isLowSurrogate,
  codePointBefore,
  isSpace,
  isWordChar,
  isWordCharAt,
  normalizeNfc,
  caseFoldKey,
} from './text';

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
