import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import {
  loadStreamingConfig,
  resolveStreamingOptions,
  streamingHttpsOptions,
} from '@nest-streaming/streaming';
import { AppModule } from './app.module';
import { configureDemoApp } from './setup';

async function bootstrap(): Promise<void> {
  // TLS (tls_enabled, tls_cert_file, ...) is read before the app exists: the HTTP server needs it.
  const httpsOptions = streamingHttpsOptions(resolveStreamingOptions(loadStreamingConfig()));
  const app = configureDemoApp(
    await NestFactory.create<NestExpressApplication>(AppModule, {
      logger: ['log', 'warn', 'error'],
      httpsOptions,
    }),
  );
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '0.0.0.0';
  await app.listen(port, host);
  const [http, ws] = httpsOptions ? ['https', 'wss'] : ['http', 'ws'];
  Logger.log(
    `demo chat on ${http}://localhost:${port}/ (WebSocket ${ws}://localhost:${port}/ws)`,
    'DemoChat',
  );
}

bootstrap().catch((err: unknown) => {
  // Start-up errors (for example invalid configuration) name the bad key; print them plainly.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
