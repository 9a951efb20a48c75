/**
 * Pure helpers of the demo page (no DOM): initials and avatar hues, link
 * detection, day keys and labels, message grouping.
 */

/** Two letters for an avatar: the first letters of the first two words of the id, else its first two characters. */
export function initials(userId: string): string {
  const parts = userId.split(/[\s._@-]+/).filter(Boolean);
  const letters =
    parts.length >= 2
      ? [Array.from(parts[0])[0], Array.from(parts[1])[0]]
      : Array.from(parts[0] ?? userId).slice(0, 2);
  return letters.join('').toUpperCase() || '?';
}

/** A hue (0..359) derived from the user id (FNV-1a): the same user gets the same colour everywhere. */
export function hueFor(userId: string): number {
  let h = 0x811c9dc5;
  for (const ch of userId) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

/** A piece of message text: plain text, or an http(s) link with its normalised href. */
export type TextSegment = { kind: 'text'; text: string } | { kind: 'link'; text: string; href: string };

const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = '.,;:!?*\'"';
const CLOSERS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

const count = (s: string, ch: string): number => s.split(ch).length - 1;

/** Drop punctuation that ends a sentence rather than the URL ("see https://a.b/c)." keeps "https://a.b/c"). */
function trimUrl(raw: string): string {
  let url = raw;
  for (;;) {
    const last = url.slice(-1);
    if (last && TRAILING_PUNCTUATION.includes(last)) url = url.slice(0, -1);
    else if (last in CLOSERS && count(url, CLOSERS[last]) < count(url, last)) url = url.slice(0, -1);
    else return url;
  }
}

/**
 * Split message text into text and link segments. Only absolute http: and
 * https: URLs become links (anything `new URL` refuses stays text), so a
 * `javascript:` or `data:` URL can never become an href.
 */
export function linkSegments(text: string): TextSegment[] {
  const out: TextSegment[] = [];
  let pos = 0;
  const pushText = (t: string) => {
    if (!t) return;
    const last = out[out.length - 1];
    if (last?.kind === 'text') last.text += t;
    else out.push({ kind: 'text', text: t });
  };
  for (const match of text.matchAll(URL_CANDIDATE)) {
    const start = match.index ?? 0;
    const candidate = trimUrl(match[0]);
    let href: string | null = null;
    try {
      const url = new URL(candidate);
      if (url.protocol === 'http:' || url.protocol === 'https:') href = url.href;
    } catch {
      href = null;
    }
    if (!href || !candidate) continue;
    pushText(text.slice(pos, start));
    out.push({ kind: 'link', text: candidate, href });
    pos = start + candidate.length;
  }
  pushText(text.slice(pos));
  return out;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** The local calendar day of a timestamp, as YYYY-MM-DD. */
export function dayKey(at: string | Date): string {
  const d = new Date(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "Today", "Yesterday", or the date ("Monday 3 March", with the year when it is not this year). */
export function dayLabel(at: string | Date, now: Date = new Date()): string {
  const d = new Date(at);
  const startOf = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((startOf(d) - startOf(now)) / 86_400_000);
  if (days === 0) return 'Today';
  if (days === -1) return 'Yesterday';
  return d.toLocaleDateString(undefined, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    ...(d.getFullYear() === now.getFullYear() ? {} : { year: 'numeric' }),
  });
}

/** Hours and minutes in the user's locale. */
export function timeLabel(at: string | Date): string {
  return new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** Full date and time, for tooltips. */
export function fullTimeLabel(at: string | Date): string {
  return new Date(at).toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'medium' });
}

/** Messages of one author within this many ms of the previous one are shown as one group. */
export const GROUP_WINDOW_MS = 5 * 60_000;

interface Groupable {
  user_id: string;
  timestamp: string;
}

/** Whether `m` continues the group of `prev`: same author, same day, within {@link GROUP_WINDOW_MS}. */
export function continuesGroup(prev: Groupable | undefined, m: Groupable): boolean {
  if (!prev || prev.user_id !== m.user_id) return false;
  if (dayKey(prev.timestamp) !== dayKey(m.timestamp)) return false;
  const gap = Date.parse(m.timestamp) - Date.parse(prev.timestamp);
  return gap >= 0 && gap <= GROUP_WINDOW_MS;
}
