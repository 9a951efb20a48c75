import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureDemoApp } from './setup';

async function bootstrap(): Promise<void> {
  const app = configureDemoApp(
    await NestFactory.create<NestExpressApplication>(AppModule, { logger: ['log', 'warn', 'error'] }),
  );
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '0.0.0.0';
  await app.listen(port, host);
  Logger.log(`demo chat on http://localhost:${port}/ (WebSocket ws://localhost:${port}/ws)`, 'DemoChat');
}

bootstrap().catch((err: unknown) => {
  // Start-up errors (for example invalid configuration) name the bad key; print them plainly.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
