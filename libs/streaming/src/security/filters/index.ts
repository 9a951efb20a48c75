/*
 * Every filter here sees every message, so each runs in time linear in the message
 * (no regular expression or loop that backtracks on crafted input).
 * The work is done by hand-written single-pass scanners; the few regular expressions
 * left are single character classes or literals that cannot backtrack.
 * `../content-filters.adversarial.spec.ts` and `bench/content-filters.bench.ts` feed
 * each filter 64 KB built against its implementation.
 */
export * from './banned-words.filter';
export * from './html-sanitizer.filter';
export * from './url.filter';
export * from './whitespace-normalizer.filter';
export { caseFoldKey, normalizeNfc } from './text';
