import { join } from 'node:path';
import { NestExpressApplication } from '@nestjs/platform-express';
import { StreamingWsAdapter } from '@nest-streaming/streaming';

/** Everything main.ts does to the app besides listening (shared with the e2e tests). */
export function configureDemoApp(app: NestExpressApplication): NestExpressApplication {
  app.useWebSocketAdapter(new StreamingWsAdapter(app));
  app.useStaticAssets(join(__dirname, '..', 'public'));
  app.enableShutdownHooks();
  return app;
}
