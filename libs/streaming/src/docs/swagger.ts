/**
 * The `@nestjs/swagger` decorators the library's controllers and DTOs use,
 * from the app's own `@nestjs/swagger` when it is installed (an optional
 * peer dependency), or no-op stand-ins when it is not: the decorators only
 * add metadata that `SwaggerModule` reads, so an app without Swagger loses
 * nothing. `@nestjs/terminus` documents its `@HealthCheck()` the same way.
 * Internal: not exported from the package.
 */
import type * as Swagger from '@nestjs/swagger';

type SwaggerDecorators = Pick<
  typeof Swagger,
  | 'ApiBearerAuth'
  | 'ApiBody'
  | 'ApiExcludeEndpoint'
  | 'ApiOperation'
  | 'ApiParam'
  | 'ApiProduces'
  | 'ApiProperty'
  | 'ApiPropertyOptional'
  | 'ApiQuery'
  | 'ApiResponse'
  | 'ApiSecurity'
  | 'ApiTags'
>;

/** The app's `@nestjs/swagger`, or undefined when it is not installed. */
function loadSwagger(): SwaggerDecorators | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@nestjs/swagger') as SwaggerDecorators;
  } catch (err) {
    const missing =
      (err as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' &&
      String((err as Error).message).includes(`'@nestjs/swagger'`);
    if (missing) return undefined;
    throw err;
  }
}

const noop = (): ClassDecorator & MethodDecorator & PropertyDecorator => () => undefined;

const NO_SWAGGER: SwaggerDecorators = {
  ApiBearerAuth: noop,
  ApiBody: noop,
  ApiExcludeEndpoint: noop,
  ApiOperation: noop,
  ApiParam: noop,
  ApiProduces: noop,
  ApiProperty: noop,
  ApiPropertyOptional: noop,
  ApiQuery: noop,
  ApiResponse: noop,
  ApiSecurity: noop,
  ApiTags: noop,
};

export const {
  ApiBearerAuth,
  ApiBody,
  ApiExcludeEndpoint,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiProperty,
  ApiPropertyOptional,
  ApiQuery,
  ApiResponse,
  ApiSecurity,
  ApiTags,
} = loadSwagger() ?? NO_SWAGGER;
