import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { StreamingWsAdapter, streamingOpenApiSecuritySchemes } from '@nest-streaming/streaming';

/** Where the demo serves its OpenAPI document: Swagger UI here, the JSON at `<path>-json`, YAML at `<path>-yaml`. */
export const API_DOCS_PATH = 'api/docs';

/** Everything main.ts does to the app besides listening (shared with the e2e tests). */
export function configureDemoApp(app: NestExpressApplication): NestExpressApplication {
  app.useWebSocketAdapter(new StreamingWsAdapter(app));
  app.useStaticAssets(join(__dirname, '..', 'public'));
  setupApiDocs(app);
  app.enableShutdownHooks();
  return app;
}

/**
 * OpenAPI 3 of every REST route, the demo's and the streaming module's, from
 * their `@nestjs/swagger` decorators: Swagger UI at `/api/docs`, the document
 * at `/api/docs-json` and `/api/docs-yaml` (built on the first request).
 */
export function setupApiDocs(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('nest-streaming demo chat')
    .setDescription(
      'REST routes of the demo chat and of the streaming module (docs/PROTOCOL.md sections 1 and 10). ' +
        'The WebSocket and SSE protocol is described by the AsyncAPI document at `/_/streaming/asyncapi.json`.',
    )
    .setVersion('1.0.0');
  for (const [name, scheme] of Object.entries(streamingOpenApiSecuritySchemes()))
    config.addSecurity(name, scheme);
  const document = config.build();
  SwaggerModule.setup(API_DOCS_PATH, app, () => SwaggerModule.createDocument(app, document));
}
