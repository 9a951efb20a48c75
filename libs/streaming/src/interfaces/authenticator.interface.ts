import type { IncomingMessage } from 'node:http';
import type { ClientEnvelope } from '@nest-streaming/protocol';
import type { ConnectionIdentity } from './connection-identity.interface';

/** What an authenticator learns from a token. */
export interface AuthResult {
  userId: string;
  sessionId?: string;
  name?: string;
  roles?: string[];
  /** Token expiry, epoch ms. */
  expiresAt?: number;
  metadata?: Record<string, unknown>;
}

/**
 * Pluggable authentication: `authenticateConnection` and `authorizeMessage`.
 * Throw (anything) from `authenticateConnection` to refuse with HTTP 401 (a
 * `StreamingError` with code `unauthorized` keeps its message; anything else is
 * answered "invalid or expired token"); throw a `StreamingError` from
 * `authorizeMessage` to refuse one request.
 */
export interface Authenticator {
  authenticateConnection(token: string, request?: IncomingMessage): Promise<AuthResult>;
  authorizeMessage?(identity: ConnectionIdentity, envelope: ClientEnvelope): Promise<void>;
}
