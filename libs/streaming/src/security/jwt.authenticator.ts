import { JWTPayload, jwtVerify } from 'jose';
import { AuthResult, Authenticator } from './authenticator.interface';

/**
 * The bundled authenticator: verifies an HS256 (by default) JWT and maps its
 * claims: `sub` (required) → user id, `sid` → session id, `name`, `roles`, `exp`.
 */
export class JwtAuthenticator implements Authenticator {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly algorithms: string[] = ['HS256'],
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async authenticateConnection(token: string): Promise<AuthResult> {
    const { payload } = await jwtVerify(token, this.key, { algorithms: this.algorithms });
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
