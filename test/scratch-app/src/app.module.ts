import { Module } from '@nestjs/common';
import { StreamingModule } from '@nest-streaming/streaming';
import { AnnounceController } from './announce.controller';
import { EchoBot } from './echo-bot';

@Module({
  imports: [
    // Anything not given here comes from FORGE_STREAMING_* (e.g. FORGE_STREAMING_BACKEND=redis);
    // the backend defaults to `local`, in memory, which needs no extra package.
    StreamingModule.forRoot({
      auth: { jwtSecret: process.env.JWT_SECRET },
      routes: { health: true },
    }),
  ],
  controllers: [AnnounceController],
  providers: [EchoBot],
})
export class AppModule {}
