import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { AuthOptions } from '@nest-streaming/streaming';

/**
 * The HS256 secret the demo signs and checks tokens with: the configured one
 * (`JWT_SECRET` or `FORGE_STREAMING_AUTH_JWT_SECRET`), else, unless tokens are
 * verified with a public key or a JWKS URL, 32 random bytes made for this run
 * (announced once, as a warning: tokens issued now stop working at a restart).
 */
export function demoJwtSecret(auth: Partial<AuthOptions> = {}): string | undefined {
  if (auth.jwtSecret) return auth.jwtSecret;
  if (auth.jwtPublicKey || auth.jwksUrl) return undefined;
  new Logger('DemoChat').warn(
    'JWT_SECRET is not set: generated a random 32-byte secret for this run; ' +
      'tokens issued now will not survive a restart (set JWT_SECRET, at least 32 bytes, to keep them)',
  );
  return randomBytes(32).toString('hex');
}
