import type { ServerEnvelope } from '@nest-streaming/protocol';

/**
 * One decoded value as a server envelope: an object with a string `type`
 * (else null). A non-string `id` is dropped; a missing `data` becomes `{}`.
 */
export function toEnvelope(value: unknown): ServerEnvelope | null {
  if (typeof value !== 'object' || value === null) return null;
  const env = value as { type?: unknown; id?: unknown; data?: unknown };
  if (typeof env.type !== 'string') return null;
  return {
    type: env.type,
    ...(typeof env.id === 'string' ? { id: env.id } : {}),
    data: env.data ?? {},
  };
}

/**
 * Split one WebSocket text frame into envelopes: the server may batch several
 * JSON envelopes in one frame, separated by `\n`. Blank lines and lines that
 * are not JSON objects with a string `type` are skipped.
 */
export function parseFrame(text: string): ServerEnvelope[] {
  const out: ServerEnvelope[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      continue;
    }
    const env = toEnvelope(value);
    if (env) out.push(env);
  }
  return out;
}
