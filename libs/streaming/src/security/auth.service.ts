import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { InjectStreamingOptions, STREAMING_AUTHENTICATOR } from '../streaming.constants';
import type { ConnectionIdentity, Authenticator } from '../interfaces';

/** The parts of an HTTP request a token can come from. */
export interface TokenSource {
  url?: string;
  headers: IncomingMessage['headers'];
}

/**
 * Turns a request into a {@link ConnectionIdentity}: token from `?token=` or the
 * configured header (`Bearer <jwt>`), checked by the active authenticator.
 * Shared by the WebSocket upgrade, SSE and the REST guard.
 */
@Injectable()
export class StreamingAuthService {
  constructor(
    @Inject(STREAMING_AUTHENTICATOR) private readonly authenticator: Authenticator,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
  ) {}

  /** The raw token of a request, or undefined. */
  extractToken(req: TokenSource): string | undefined {
    if (req.url) {
      const q = req.url.indexOf('?');
      if (q !== -1) {
        const token = new URLSearchParams(req.url.slice(q + 1)).get('token');
        if (token) return token;
      }
    }
    const raw = req.headers[this.options.auth.tokenHeader.toLowerCase()];
    const header = Array.isArray(raw) ? raw[0] : raw;
    if (!header) return undefined;
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    return m ? m[1] : header.trim();
  }

  /** Authenticate a request; throws `unauthorized` when it may not connect. */
  async authenticate(req: TokenSource): Promise<ConnectionIdentity> {
    const token = this.extractToken(req);
    const { requireAuth, validateOnConnect } = this.options.auth;
    if (!token) {
      if (requireAuth) throw new StreamingError('unauthorized', 'missing token');
      return this.anonymous();
    }
    if (!validateOnConnect && !requireAuth) return this.anonymous();
    try {
      const r = await this.authenticator.authenticateConnection(token, req as IncomingMessage);
      if (!r.userId) throw new Error('no user id');
      if (r.expiresAt !== undefined && r.expiresAt <= Date.now()) throw new Error('token expired');
      return {
        userId: r.userId,
        sessionId: r.sessionId ?? randomBytes(8).toString('hex'),
        name: r.name,
        roles: r.roles ?? [],
        expiresAt: r.expiresAt,
        anonymous: false,
        metadata: r.metadata ?? {},
      };
    } catch (e) {
      if (!requireAuth) return this.anonymous();
      // An authenticator may say why (for example a token without `exp`); anything else stays vague.
      throw e instanceof StreamingError && e.code === 'unauthorized'
        ? e
        : new StreamingError('unauthorized', 'invalid or expired token');
    }
  }

  /**
   * `refresh_token`: the identity of `current` under a new token. An invalid
   * or expired token is `unauthorized`, a token of another user `forbidden`;
   * the session id stays the connection's.
   */
  async refresh(current: ConnectionIdentity, token: string): Promise<ConnectionIdentity> {
    let r;
    try {
      r = await this.authenticator.authenticateConnection(token);
      if (!r.userId) throw new Error('no user id');
      if (r.expiresAt !== undefined && r.expiresAt <= Date.now()) throw new Error('token expired');
    } catch (e) {
      throw e instanceof StreamingError && e.code === 'unauthorized'
        ? e
        : new StreamingError('unauthorized', 'invalid or expired token');
    }
    if (r.userId !== current.userId) {
      throw new StreamingError('forbidden', 'the new token is for another user');
    }
    return {
      ...current,
      name: r.name ?? current.name,
      roles: r.roles ?? [],
      expiresAt: r.expiresAt,
      metadata: r.metadata ?? {},
    };
  }

  private anonymous(): ConnectionIdentity {
    const id = randomBytes(6).toString('hex');
    return { userId: `anon-${id}`, sessionId: id, roles: [], anonymous: true, metadata: {} };
  }
}
