/**
 * Character tests and normalization shared by the bundled content filters, each
 * linear in its input.
 */

export const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
export const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** The code point that ends just before index `i` (-1 at the start). */
export function codePointBefore(s: string, i: number): number {
  if (i <= 0) return -1;
  const c = s.charCodeAt(i - 1);
  if (isLowSurrogate(c) && i >= 2 && isHighSurrogate(s.charCodeAt(i - 2))) return s.codePointAt(i - 2)!;
  return c;
}

/** `\s` of JavaScript regular expressions (WhiteSpace and LineTerminator). */
export function isSpace(c: number): boolean {
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

export const LETTER_OR_NUMBER = /[\p{L}\p{N}]/u;
export const MARK = /\p{M}/u;

export const isAsciiLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
export const isAsciiDigit = (c: number): boolean => c >= 48 && c <= 57;

/** `[\p{L}\p{N}]` for one code point (-1: none). */
export function isLetterOrNumber(cp: number): boolean {
  if (cp < 0x80) return cp >= 0 && (isAsciiLetter(cp) || isAsciiDigit(cp));
  return LETTER_OR_NUMBER.test(String.fromCodePoint(cp));
}

export const WORD_CHAR = /[\p{L}\p{M}\p{N}_]/u;
export const WORD_CHAR_AT = /[\p{L}\p{M}\p{N}_]/uy;
export const MARK_AT = /\p{M}/uy;

/** A word character: a letter, combining mark, digit or `_` (Unicode-aware `\w`; -1: none). */
export function isWordChar(cp: number): boolean {
  if (cp < 0x80) return cp === 95 || (cp >= 0 && (isAsciiLetter(cp) || isAsciiDigit(cp)));
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

/** {@link isWordChar} for the code point at `i` (false past the end). */
export function isWordCharAt(s: string, i: number): boolean {
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
export const MAX_MARK_RUN = 30;

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
export const EXTRA_FOLDS = new Map<number, number>(
  [
    [0x1fd3, 0x390],
    [0x1fe3, 0x3b0],
    [0xfb05, 0xfb06],
  ].filter(([a, b]) =>
    new RegExp(`^${String.fromCodePoint(a)}$`, 'iu').test(String.fromCodePoint(b)),
  ) as Array<[number, number]>,
);

export const isOneCodePoint = (s: string): boolean =>
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
