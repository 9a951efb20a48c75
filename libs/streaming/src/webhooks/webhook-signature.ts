import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, in the manner of Stripe's: the sender puts the current
 * unix time (seconds) in `X-Streaming-Timestamp` and
 * `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with webhookSecret>`
 * in `X-Streaming-Signature`. A receiver recomputes the HMAC over the raw
 * bytes it received (not a re-serialized JSON), compares in constant time,
 * and refuses timestamps too far from its clock (replays).
 */

/** Headers of every webhook POST. */
export const WEBHOOK_HEADERS = {
  /** The event's id: the idempotency key, the same on every retry. */
  id: 'X-Streaming-Webhook-Id',
  /** Unix seconds of this try (signed with the body). */
  timestamp: 'X-Streaming-Timestamp',
  /** `v1=<hex>`; several comma-separated entries are accepted by {@link verifyWebhookSignature}. */
  signature: 'X-Streaming-Signature',
} as const;

/** Default of `toleranceS`: a signature older (or newer) than 5 minutes is refused. */
export const WEBHOOK_TOLERANCE_S = 300;

/** Hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`. */
export function webhookHmac(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The `X-Streaming-Signature` value: `v1=<hex>`. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return `v1=${webhookHmac(secret, timestamp, body)}`;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Whether a webhook is authentic: `signatureHeader` (`v1=<hex>`, or several
 * comma-separated entries) holds the HMAC-SHA256 of `"<timestamp>.<body>"`
 * keyed with `secret`, compared in constant time, and `timestamp` (the
 * `X-Streaming-Timestamp` header, unix seconds) is within `toleranceS`
 * seconds of now (default 300; `Infinity` skips the check). `body` must be
 * the raw request body, byte for byte. Never throws: anything malformed or
 * missing is `false`.
 *
 * ```ts
 * const ok = verifyWebhookSignature(secret, req.headers['x-streaming-timestamp'], rawBody,
 *   req.headers['x-streaming-signature']);
 * ```
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number | undefined | null | string[],
  body: string | Uint8Array,
  signatureHeader: string | undefined | null | string[],
  toleranceS: number = WEBHOOK_TOLERANCE_S,
  nowS: number = Date.now() / 1000,
): boolean {
  if (typeof secret !== 'string' || secret === '') return false;
  if (typeof timestamp !== 'string' && typeof timestamp !== 'number') return false;
  if (typeof signatureHeader !== 'string') return false;
  const text = String(timestamp);
  if (!/^\d{1,12}$/.test(text)) return false;
  if (!(Math.abs(nowS - Number(text)) <= toleranceS)) return false;
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return false;
  // Signed over the timestamp exactly as sent.
  const expected = Buffer.from(webhookHmac(secret, text, body), 'hex');
  let ok = false;
  for (const entry of signatureHeader.split(',')) {
    const [scheme, value] = entry.trim().split('=', 2);
    if (scheme !== 'v1' || value === undefined || !HEX_SHA256.test(value)) continue;
    // Every candidate is compared (no early exit), each in constant time.
    if (timingSafeEqual(Buffer.from(value, 'hex'), expected)) ok = true;
  }
  return ok;
}
