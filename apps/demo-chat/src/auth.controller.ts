import { randomBytes } from 'node:crypto';
import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';
import { SignJWT } from 'jose';
import { InjectStreamingOptions, StreamingOptions } from '@nest-streaming/streaming';

/** Secret used when neither JWT_SECRET nor FORGE_STREAMING_AUTH_JWT_SECRET is set (demo only). */
export const DEMO_DEFAULT_SECRET = 'demo-chat-insecure-secret-set-JWT_SECRET';

/** Names that log in with the `admin` role: `DEMO_ADMINS`, comma separated (demo only). */
function adminNames(): string[] {
  return (process.env.DEMO_ADMINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

class LoginDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  @Matches(/^[\w.@-]+$/, { message: 'username may hold letters, digits, _ . @ - only' })
  username!: string;
}

/** Demo-only login: a JWT for any name, no password. */
@Controller('api/auth')
export class AuthController {
  private readonly key: Uint8Array;
  private readonly admins = adminNames();

  constructor(@InjectStreamingOptions() options: StreamingOptions) {
    this.key = new TextEncoder().encode(options.auth.jwtSecret ?? DEMO_DEFAULT_SECRET);
  }

  @Post('login')
  @HttpCode(200)
  async login(@Body() body: LoginDto): Promise<{ token: string; user_id: string }> {
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
