/** A server URL with its credentials split off (nats.js takes credentials as options, not in URLs). */
export interface ParsedNatsUrl {
  /** `nats://host:port` or `tls://host:port`, without credentials. */
  server: string;
  user?: string;
  pass?: string;
  /** `nats://<token>@host`: a user without a password is a token. */
  token?: string;
}

/**
 * Parse `nats://[user:pass@|token@]host[:port]` (or `tls://`, or a bare
 * `host:port`). Credentials are percent-decoded; the error never repeats them.
 */
export function parseNatsUrl(raw: string): ParsedNatsUrl {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `nats://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`invalid NATS URL: ${redactNatsUrl(raw)}`);
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'nats' && scheme !== 'tls') {
    throw new Error(`invalid NATS URL ${redactNatsUrl(raw)}: use nats:// or tls://`);
  }
  if (!url.hostname) throw new Error(`invalid NATS URL: ${redactNatsUrl(raw)} has no host`);
  const parsed: ParsedNatsUrl = { server: `${scheme}://${url.host}` };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (user && pass) {
    parsed.user = user;
    parsed.pass = pass;
  } else if (user) {
    parsed.token = user;
  } else if (pass) {
    parsed.pass = pass;
  }
  return parsed;
}

/** The URL with any password or token replaced by `***`. */
export function redactNatsUrl(raw: string): string {
  return raw.replace(/\/\/([^@/]*)@/, (_m, creds: string) => {
    const i = creds.indexOf(':');
    return i >= 0 ? `//${creds.slice(0, i)}:***@` : '//***@';
  });
}
