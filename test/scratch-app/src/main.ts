import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { StreamingWsAdapter } from '@nest-streaming/streaming';
import { AppModule } from './app.module';

async function bootstrap(): Promise<void> {
  // abortOnError: false makes a start-up error (bad configuration, missing optional package)
  // reject here instead of aborting the process.
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    logger: ['warn', 'error'],
    abortOnError: false,
  });
  app.useWebSocketAdapter(new StreamingWsAdapter(app));
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  console.log(`listening on port ${port} (WebSocket /ws, SSE /sse)`);
}

bootstrap().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
