import { Module, ValidationPipe } from '@nestjs/common';
import { ConfigModule, ConfigType } from '@nestjs/config';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { StreamingHttpErrorFilter, StreamingModule, streamingConfig } from '@nest-streaming/streaming';
import { AuthController, DEMO_DEFAULT_SECRET } from './auth.controller';
import { RoomsController } from './rooms.controller';
import { HelpBotService } from './help-bot.service';
import { PresenceAuditController, PresenceAuditService } from './presence-audit.service';

@Module({
  imports: [
    StreamingModule.forRootAsync({
      imports: [ConfigModule.forFeature(streamingConfig)],
      inject: [streamingConfig.KEY],
      useFactory: (config: ConfigType<typeof streamingConfig>) => ({
        ...config,
        // The demo keeps rooms and history across restarts unless told otherwise.
        historyStore: config.historyStore ?? 'sqlite',
        historyPath: config.historyPath ?? 'data/demo-chat.sqlite',
        // The demo works out of the box; set JWT_SECRET in production.
        auth: { ...config.auth, jwtSecret: config.auth?.jwtSecret ?? DEMO_DEFAULT_SECRET },
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
