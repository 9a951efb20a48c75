/**
 * What the bundled JWT authenticator accepts as key material, shared by the
 * start-up validation of `auth.*` and {@link JwtAuthenticator} itself.
 */

/** Fewest bytes an HS256/384/512 secret may have (HS256's hash size, RFC 7518 section 3.2). */
export const MIN_HS_SECRET_BYTES = 32;

/** Host names that never leave the machine: plain-http JWKS URLs are allowed to these only. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Why `secret` may not sign HS* tokens (too short), or undefined when it may. */
export function hsSecretProblem(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  return bytes < MIN_HS_SECRET_BYTES
    ? `must be at least ${MIN_HS_SECRET_BYTES} bytes long (it is ${bytes}); generate one with \`openssl rand -hex 32\``
    : undefined;
}

/** Why keys may not be fetched from `url` (not a URL, or not https outside loopback), or undefined. */
export function jwksUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be a URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return undefined;
  return 'must be an https:// URL (plain http:// only to a loopback host: localhost, 127.0.0.1, ::1)';
}
