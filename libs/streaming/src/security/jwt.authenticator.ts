import { createSecretKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  JWTPayload,
  JWTVerifyGetKey,
  KeyLike,
  createRemoteJWKSet,
  importSPKI,
  importX509,
  jwtVerify,
} from 'jose';
import { StreamingError } from '../protocol/streaming-error';
import { hsSecretProblem, jwksUrlProblem } from './jwt-key-rules';
import type { AuthResult, Authenticator } from '../interfaces';

/** How the bundled JWT authenticator verifies signatures. */
export interface JwtAuthenticatorOptions {
  /** HS256/384/512 shared secret, at least 32 bytes. */
  secret?: string;
  /** RS/ES/PS public key: a PEM (SPKI or X.509 certificate) or a path to a PEM file. */
  publicKey?: string;
  /** A JWKS URL (keys fetched and cached by `jose`): https, or http to a loopback host. */
  jwksUrl?: string;
  /** Accepted algorithms; anything else is refused. Default `['HS256']`. */
  algorithms?: string[];
  /** Refuse tokens without an `exp` claim. Default `true`. */
  requireExp?: boolean;
}

/**
 * The bundled authenticator: verifies a JWT (HS256 with a secret by default,
 * or RS256/ES256/... with a public key or a JWKS URL) and maps its claims:
 * `sub` (required) → user id, `sid` → session id, `name`, `roles`, `exp`
 * (required unless `requireExp` is false).
 * @throws Error at construction for a secret shorter than 32 bytes or a JWKS
 * URL that is not https (loopback hosts aside).
 */
export class JwtAuthenticator implements Authenticator {
  private readonly key: Promise<Uint8Array | KeyLike | JWTVerifyGetKey>;
  private readonly algorithms: string[];
  private readonly requireExp: boolean;

  constructor(secretOrOptions: string | JwtAuthenticatorOptions, algorithms: string[] = ['HS256']) {
    const o: JwtAuthenticatorOptions =
      typeof secretOrOptions === 'string' ? { secret: secretOrOptions, algorithms } : secretOrOptions;
    this.algorithms = o.algorithms ?? algorithms;
    this.requireExp = o.requireExp ?? true;
    const problem = o.jwksUrl
      ? jwksUrlProblem(o.jwksUrl)
      : !o.publicKey && o.secret
        ? hsSecretProblem(o.secret)
        : undefined;
    if (problem) throw new Error(`JwtAuthenticator: the ${o.jwksUrl ? 'JWKS URL' : 'secret'} ${problem}`);
    this.key = JwtAuthenticator.resolveKey(o, this.algorithms);
    this.key.catch(() => undefined); // surfaced on first use
  }

  private static async resolveKey(
    o: JwtAuthenticatorOptions,
    algorithms: string[],
  ): Promise<Uint8Array | KeyLike | JWTVerifyGetKey> {
    if (o.jwksUrl) return createRemoteJWKSet(new URL(o.jwksUrl));
    if (o.publicKey) {
      const pem = o.publicKey.includes('-----BEGIN') ? o.publicKey : readFileSync(o.publicKey, 'utf8');
      const alg = algorithms.find((a) => !a.startsWith('HS')) ?? 'RS256';
      return pem.includes('CERTIFICATE') ? importX509(pem, alg) : importSPKI(pem, alg);
    }
    // One KeyObject for every verification (a byte array would be imported again on each).
    if (o.secret) return createSecretKey(Buffer.from(o.secret, 'utf8'));
    throw new Error('JwtAuthenticator needs a secret, a public key or a JWKS URL');
  }

  async authenticateConnection(token: string): Promise<AuthResult> {
    const key = await this.key;
    const { payload } =
      typeof key === 'function'
        ? await jwtVerify(token, key, { algorithms: this.algorithms })
        : await jwtVerify(token, key, { algorithms: this.algorithms });
    if (this.requireExp && payload.exp === undefined) {
      throw new StreamingError('unauthorized', 'token has no exp claim (exp is required)');
    }
    return claimsToAuthResult(payload);
  }
}

/** Map standard claims to an {@link AuthResult}; rejects tokens without `sub`. */
export function claimsToAuthResult(payload: JWTPayload): AuthResult {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new Error('token has no sub claim');
  const roles = Array.isArray(payload.roles)
    ? payload.roles.filter((r): r is string => typeof r === 'string')
    : [];
  return {
    userId: payload.sub,
    sessionId: typeof payload.sid === 'string' ? payload.sid : undefined,
    name: typeof payload.name === 'string' ? payload.name : undefined,
    roles,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
  };
}
