import { Module, ValidationPipe } from '@nestjs/common';
import { ConfigModule, ConfigType } from '@nestjs/config';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { StreamingHttpErrorFilter, StreamingModule, streamingConfig } from '@nest-streaming/streaming';
import { AuthController } from './auth.controller';
import { demoJwtSecret } from './demo-secret';
import { RoomsController } from './rooms.controller';
import { HelpBotService } from './help-bot.service';
import { PresenceAuditController, PresenceAuditService } from './presence-audit.service';

@Module({
  imports: [
    StreamingModule.forRootAsync({
      // The demo serves every optional route, open (an app would guard stats, route and metrics),
      // the server API (404 until FORGE_STREAMING_API_KEY is set), the AsyncAPI document of
      // the socket protocol at /_/streaming/asyncapi.json and the admin console at
      // /_/streaming/admin (its API needs a token with the admin role: log in with a name in DEMO_ADMINS).
      routes: {
        health: true,
        stats: true,
        route: true,
        metrics: true,
        api: true,
        asyncapi: true,
        admin: true,
      },
      imports: [ConfigModule.forFeature(streamingConfig)],
      inject: [streamingConfig.KEY],
      useFactory: (config: ConfigType<typeof streamingConfig>) => ({
        ...config,
        // The demo keeps rooms and history across restarts unless told otherwise.
        historyStore: config.historyStore ?? 'sqlite',
        historyPath: config.historyPath ?? 'data/demo-chat.sqlite',
        // The demo works out of the box: without JWT_SECRET it makes a random secret for this run,
        // which AuthController signs with too (it reads the same resolved options).
        auth: { ...config.auth, jwtSecret: demoJwtSecret(config.auth) },
      }),
    }),
  ],
  controllers: [AuthController, RoomsController, PresenceAuditController],
  providers: [
    { provide: APP_PIPE, useValue: new ValidationPipe({ transform: true }) },
    { provide: APP_FILTER, useClass: StreamingHttpErrorFilter },
    HelpBotService,
    PresenceAuditService,
  ],
})
export class AppModule {}
