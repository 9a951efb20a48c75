/**
 * The words `search_messages` matches on (PROTOCOL.md §10), in one place:
 * the scan of `MessageSearchService` and a backend's search index (the local
 * SQLite store's FTS5 table) split text the same way, so they cannot differ.
 */
const WORD = /[\p{L}\p{N}]+/gu;

/** The words of a text, lower-cased (letters and digits of any script; everything else separates). */
export function wordsOf(text: string): string[] {
  return (text.toLowerCase().match(WORD) ?? []) as string[];
}
