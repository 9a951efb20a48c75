import { randomBytes } from 'node:crypto';
import { Body, Controller, HttpCode, NotImplementedException, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import { SignJWT } from 'jose';
import { InjectStreamingOptions, StreamingOptions } from '@nest-streaming/streaming';
import { ApiErrors } from './api-docs';

/** Names that log in with the `admin` role: `DEMO_ADMINS`, comma separated (demo only). */
function adminNames(): string[] {
  return (process.env.DEMO_ADMINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

class LoginDto {
  @ApiProperty({ maxLength: 64, pattern: '^[\\w.@-]+$', example: 'alice' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  @Matches(/^[\w.@-]+$/, { message: 'username may hold letters, digits, _ . @ - only' })
  username!: string;
}

class LoginAnswer {
  @ApiProperty({ description: 'An HS256 JWT for `username`, valid 24 h.' }) token!: string;
  @ApiProperty({ description: 'The `sub` of the token: the username.' }) user_id!: string;
}

/**
 * Demo-only login: a JWT for any name, no password, signed with the streaming
 * module's own `auth.jwtSecret` (configured, or generated at start-up by
 * `demoJwtSecret`), so the tokens it issues are the ones `/ws` accepts.
 */
@Controller('api/auth')
@ApiTags('auth')
export class AuthController {
  private readonly key?: Uint8Array;
  private readonly admins = adminNames();

  constructor(@InjectStreamingOptions() options: StreamingOptions) {
    const secret = options.auth.jwtSecret;
    this.key = secret ? new TextEncoder().encode(secret) : undefined;
  }

  @Post('login')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Demo login: a JWT for any name, no password',
    description: 'Names listed in `DEMO_ADMINS` get the `admin` role. Demo only.',
  })
  @ApiOkResponse({ type: LoginAnswer })
  @ApiErrors(400, 501)
  async login(@Body() body: LoginDto): Promise<{ token: string; user_id: string }> {
    if (!this.key) {
      throw new NotImplementedException(
        'the demo login signs HS256 tokens with JWT_SECRET; this server verifies tokens with a public key or JWKS URL',
      );
    }
    const admin = this.admins.includes(body.username);
    const claims = {
      sid: randomBytes(8).toString('hex'),
      name: body.username,
      ...(admin ? { roles: ['admin'] } : {}),
    };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(body.username)
      .setIssuedAt()
      .setExpirationTime('24h')
      .sign(this.key);
    return { token, user_id: body.username };
  }
}
