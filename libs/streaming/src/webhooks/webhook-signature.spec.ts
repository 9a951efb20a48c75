import { createHmac } from 'node:crypto';
import { WEBHOOK_HEADERS, signWebhook, verifyWebhookSignature, webhookHmac } from './webhook-signature';

const SECRET = 'whsec-unit-test-0123456789';
const BODY = JSON.stringify({ id: 'e1', type: 'connect', data: { user_id: 'ünïcode' } });
const NOW = 1_750_000_000;

/** The documented scheme, computed independently. */
const reference = (secret: string, ts: number | string, body: string): string =>
  createHmac('sha256', secret).update(`${ts}.${body}`, 'utf8').digest('hex');

describe('signWebhook', () => {
  it('is v1=<hex HMAC-SHA256 of "<timestamp>.<body>">', () => {
    expect(signWebhook(SECRET, NOW, BODY)).toBe(`v1=${reference(SECRET, NOW, BODY)}`);
    expect(webhookHmac(SECRET, String(NOW), Buffer.from(BODY))).toBe(reference(SECRET, NOW, BODY));
  });

  it('names the headers', () => {
    expect(WEBHOOK_HEADERS).toEqual({
      id: 'X-Streaming-Webhook-Id',
      timestamp: 'X-Streaming-Timestamp',
      signature: 'X-Streaming-Signature',
    });
  });
});

describe('verifyWebhookSignature', () => {
  const header = `v1=${reference(SECRET, NOW, BODY)}`;

  it('accepts the right signature over the raw body (string or bytes)', () => {
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 300, NOW)).toBe(true);
    expect(verifyWebhookSignature(SECRET, NOW, Buffer.from(BODY, 'utf8'), header, 300, NOW)).toBe(true);
    expect(
      verifyWebhookSignature(SECRET, String(NOW), BODY, header.toUpperCase().replace('V1=', 'v1='), 300, NOW),
    ).toBe(true);
  });

  it('uses the clock by default', () => {
    const ts = Math.floor(Date.now() / 1000);
    expect(verifyWebhookSignature(SECRET, String(ts), BODY, signWebhook(SECRET, ts, BODY))).toBe(true);
  });

  it('refuses another secret, body or timestamp', () => {
    expect(verifyWebhookSignature('another-secret-of-16+', String(NOW), BODY, header, 300, NOW)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(NOW), `${BODY} `, header, 300, NOW)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(NOW + 1), BODY, header, 300, NOW)).toBe(false);
    // The timestamp is signed as sent: a leading zero is another message.
    expect(verifyWebhookSignature(SECRET, `0${NOW}`, BODY, header, 300, NOW)).toBe(false);
  });

  it('refuses timestamps outside the tolerance (either way), unless it is Infinity', () => {
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 300, NOW + 300)).toBe(true);
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 300, NOW + 301)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 300, NOW - 301)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, 10, NOW + 11)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, header, Infinity, NOW + 1e6)).toBe(true);
  });

  it('accepts a header with several entries when one matches (key rotation)', () => {
    const other = `v1=${reference('an-older-secret-0000', NOW, BODY)}`;
    expect(verifyWebhookSignature(SECRET, String(NOW), BODY, `${other}, ${header}`, 300, NOW)).toBe(true);
    expect(
      verifyWebhookSignature(SECRET, String(NOW), BODY, `v0=${reference(SECRET, NOW, BODY)}`, 300, NOW),
    ).toBe(false);
  });

  it('is false, never a throw, on anything malformed or missing', () => {
    const hex = reference(SECRET, NOW, BODY);
    const bad: Array<[unknown, unknown, unknown, unknown]> = [
      [SECRET, undefined, BODY, header],
      [SECRET, String(NOW), BODY, undefined],
      [SECRET, [String(NOW)], BODY, header],
      [SECRET, String(NOW), BODY, [header]],
      [SECRET, 'soon', BODY, header],
      [SECRET, '-1', BODY, header],
      [SECRET, String(NOW), BODY, hex],
      [SECRET, String(NOW), BODY, `v1=${hex.slice(2)}`],
      [SECRET, String(NOW), BODY, `v1=${hex}00`],
      [SECRET, String(NOW), BODY, `v1=${'z'.repeat(64)}`],
      [SECRET, String(NOW), BODY, 'v1='],
      [SECRET, String(NOW), BODY, ''],
      [SECRET, String(NOW), undefined, header],
      ['', String(NOW), BODY, header],
    ];
    for (const [secret, ts, body, sig] of bad) {
      const call = (): boolean =>
        verifyWebhookSignature(secret as never, ts as never, body as never, sig as never, 300, NOW);
      expect(call).not.toThrow();
      expect(call()).toBe(false);
    }
  });
});
