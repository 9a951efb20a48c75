import { SignJWT, type JWTPayload } from 'jose';
import { resolveStreamingOptions } from '../config/streaming-options.validation';
import type { StreamingOptionsInput } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingAuthService } from './auth.service';
import { JwtAuthenticator } from './jwt.authenticator';
import { hsSecretProblem, isLoopbackHost, jwksUrlProblem } from './jwt-key-rules';
import type { Authenticator } from '../interfaces';

const SECRET = 'jwt-authenticator-spec-secret-0123456789';
const nowS = (): number => Math.floor(Date.now() / 1000);
const sign = (claims: JWTPayload, secret = SECRET): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

const refusalOf = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a refusal');
};

describe('JwtAuthenticator: exp', () => {
  it('accepts a token with exp and maps its claims', async () => {
    const exp = nowS() + 600;
    const r = await new JwtAuthenticator(SECRET).authenticateConnection(
      await sign({ sub: 'alice', sid: 's1', name: 'Alice', roles: ['admin', 7], exp }),
    );
    expect(r).toEqual({
      userId: 'alice',
      sessionId: 's1',
      name: 'Alice',
      roles: ['admin'],
      expiresAt: exp * 1000,
    });
  });

  it('refuses a token without exp by default, saying exp is required', async () => {
    const token = await sign({ sub: 'alice' });
    for (const a of [new JwtAuthenticator(SECRET), new JwtAuthenticator({ secret: SECRET })]) {
      const e = await refusalOf(a.authenticateConnection(token));
      expect(e).toBeInstanceOf(StreamingError);
      expect(e).toMatchObject({ code: 'unauthorized', message: 'token has no exp claim (exp is required)' });
    }
  });

  it('accepts a token without exp with requireExp: false (no expiry)', async () => {
    const a = new JwtAuthenticator({ secret: SECRET, requireExp: false });
    expect(await a.authenticateConnection(await sign({ sub: 'bob' }))).toMatchObject({
      userId: 'bob',
      expiresAt: undefined,
    });
    // Everything else is still checked.
    await expect(a.authenticateConnection(await sign({ sub: 'bob' }, `${SECRET}-other`))).rejects.toThrow();
    await expect(a.authenticateConnection(await sign({ sub: 'bob', exp: nowS() - 10 }))).rejects.toThrow();
  });
});

describe('JwtAuthenticator: key material', () => {
  it('refuses a secret shorter than 32 bytes at construction', () => {
    expect(() => new JwtAuthenticator('short')).toThrow(
      'JwtAuthenticator: the secret must be at least 32 bytes long (it is 5)',
    );
    expect(() => new JwtAuthenticator({ secret: 'x'.repeat(31) })).toThrow(/at least 32 bytes/);
    expect(() => new JwtAuthenticator({ secret: 'x'.repeat(32) })).not.toThrow();
  });

  it('refuses a plain-http JWKS URL unless its host is loopback', () => {
    expect(
      () => new JwtAuthenticator({ jwksUrl: 'http://auth.example.com/jwks', algorithms: ['ES256'] }),
    ).toThrow('JwtAuthenticator: the JWKS URL must be an https:// URL');
    for (const jwksUrl of [
      'https://auth.example.com/jwks',
      'http://127.0.0.1:9/jwks',
      'http://[::1]:9/jwks',
    ]) {
      expect(() => new JwtAuthenticator({ jwksUrl, algorithms: ['ES256'] })).not.toThrow();
    }
  });

  it('key rules', () => {
    expect(['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]'].map(isLoopbackHost)).toEqual(
      Array(6).fill(true),
    );
    expect(
      ['localhost.evil.com', '10.0.0.1', '0.0.0.0', '::', '128.0.0.1', 'example.com'].map(isLoopbackHost),
    ).toEqual(Array(6).fill(false));
    expect(hsSecretProblem('€'.repeat(11))).toBeUndefined(); // 33 bytes
    expect(hsSecretProblem('€'.repeat(10))).toMatch(/it is 30/);
    expect(jwksUrlProblem('not a url')).toBe('must be a URL');
    expect(jwksUrlProblem('https://example.com/jwks')).toBeUndefined();
  });
});

describe('StreamingAuthService with the JWT authenticator', () => {
  const service = (auth: StreamingOptionsInput['auth'], authenticator?: Authenticator) => {
    const options = resolveStreamingOptions({ auth: { jwtSecret: SECRET, ...auth } });
    const a = authenticator ?? new JwtAuthenticator({ secret: SECRET, requireExp: options.auth.requireExp });
    return new StreamingAuthService(a, options);
  };
  const req = (token: string) => ({ url: `/ws?token=${token}`, headers: {} });

  it('refuses a token without exp as unauthorized with the reason; other failures stay vague', async () => {
    const s = service({});
    await expect(s.authenticate(req(await sign({ sub: 'a' })))).rejects.toMatchObject({
      code: 'unauthorized',
      message: 'token has no exp claim (exp is required)',
    });
    await expect(
      s.authenticate(req(await sign({ sub: 'a', exp: nowS() + 60 }, `${SECRET}!`))),
    ).rejects.toMatchObject({
      code: 'unauthorized',
      message: 'invalid or expired token',
    });
    expect(await s.authenticate(req(await sign({ sub: 'a', exp: nowS() + 60 })))).toMatchObject({
      userId: 'a',
      anonymous: false,
    });
  });

  it('with requireExp off, a token without exp connects (no expiry)', async () => {
    const id = await service({ requireExp: false }).authenticate(req(await sign({ sub: 'b' })));
    expect(id).toMatchObject({ userId: 'b', anonymous: false, expiresAt: undefined });
  });

  it('with requireAuth off, a token without exp is anonymous like any invalid token', async () => {
    const id = await service({ requireAuth: false }).authenticate(req(await sign({ sub: 'c' })));
    expect(id.anonymous).toBe(true);
  });

  it('a custom authenticator is not held to exp', async () => {
    const custom: Authenticator = { authenticateConnection: async (t) => ({ userId: `user-${t}` }) };
    expect(await service({}, custom).authenticate(req('opaque'))).toMatchObject({
      userId: 'user-opaque',
      expiresAt: undefined,
    });
  });
});
