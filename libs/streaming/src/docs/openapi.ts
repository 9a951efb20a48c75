/**
 * OpenAPI pieces of the library's REST routes: the security schemes they
 * name, the REST error body, response schemas from the protocol's schemas
 * (written for OpenAPI 3.0, which has `nullable` instead of `null` types),
 * and the decorators that attach them. `@nestjs/swagger` stays optional:
 * the decorators come from ./swagger.
 */
import { applyDecorators } from '@nestjs/common';
import type { JsonSchema } from '@nest-streaming/protocol';
import { dtoSchema } from './dto-schema';
import { ApiBody, ApiProperty, ApiPropertyOptional, ApiResponse } from './swagger';

/** The security scheme of the server API (`Authorization: apikey <key>`). */
export const STREAMING_API_KEY_SECURITY = 'streaming_api_key';
/** The security scheme of routes taking the user's JWT (`Authorization: Bearer <jwt>`), `@ApiBearerAuth()`'s default name. */
export const STREAMING_BEARER_SECURITY = 'bearer';

/** An OpenAPI security scheme object, as `DocumentBuilder.addSecurity(name, scheme)` takes it. */
export type StreamingSecurityScheme =
  | { type: 'http'; scheme: 'bearer'; bearerFormat: 'JWT'; description: string }
  | { type: 'apiKey'; in: 'header'; name: 'Authorization'; description: string };

/**
 * The security schemes the library's routes refer to, by name: add each to
 * your `DocumentBuilder` with `addSecurity(name, scheme)`.
 */
export function streamingOpenApiSecuritySchemes(): Record<string, StreamingSecurityScheme> {
  return {
    [STREAMING_BEARER_SECURITY]: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'A user JWT: `Authorization: Bearer <jwt>` (SSE also takes `?token=`).',
    },
    [STREAMING_API_KEY_SECURITY]: {
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
      description: 'The server API key (`apiKey` / FORGE_STREAMING_API_KEY), as the value `apikey <key>`.',
    },
  };
}

/** The JSON body of every REST error (PROTOCOL.md section 1, Nest's shape plus the protocol's `code`). */
export class StreamingHttpErrorBody {
  @ApiProperty({ example: 404 }) statusCode!: number;
  @ApiProperty({ example: 'Not Found' }) error!: string;
  @ApiProperty({
    description: 'A human sentence (a list of them for validation errors of Nest’s ValidationPipe).',
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    example: 'room r1 not found',
  })
  message!: string | string[];
  @ApiPropertyOptional({
    description: 'The protocol error code (PROTOCOL.md section 6).',
    example: 'room_not_found',
  })
  code?: string;
  @ApiPropertyOptional({ description: 'With 429: when to try again.' })
  retry_after_ms?: number;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad input (`invalid_message`).',
  401: 'No token or key, or an invalid one.',
  403: 'Not allowed.',
  404: 'Not found.',
  409: 'Conflict.',
  413: 'Too large.',
  429: 'Rate limited (`Retry-After` says when to try again).',
  503: 'Down.',
};

/** `@ApiResponse` for each error status, with {@link StreamingHttpErrorBody}. */
export const ApiErrorResponses = (...statuses: number[]): MethodDecorator & ClassDecorator =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: STATUS_TEXT[status] ?? 'Error.', type: StreamingHttpErrorBody }),
    ),
  );

/** An OpenAPI 3.0 schema object (the part {@link openApiSchema} writes). */
export interface OpenApiSchema {
  type?: string;
  nullable?: boolean;
  title?: string;
  description?: string;
  format?: string;
  enum?: Array<string | number | boolean | null>;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: boolean | OpenApiSchema;
  items?: OpenApiSchema;
  minItems?: number;
  maxItems?: number;
  anyOf?: OpenApiSchema[];
}

/**
 * A JSON Schema of `@nest-streaming/protocol` (e.g. `protocolSchemas().WireMessage`) as
 * OpenAPI 3.0 writes it (`nullable` instead of `null` types, `enum` instead
 * of `const`), for `@ApiResponse({ schema })` and the like.
 */
export function openApiSchema(schema: JsonSchema): OpenApiSchema {
  const {
    type,
    const: constant,
    anyOf,
    properties,
    items,
    additionalProperties,
    enum: values,
    $ref,
    ...rest
  } = schema;
  if ($ref !== undefined) throw new Error(`openApiSchema: $ref ${$ref} is not supported`);
  const out: OpenApiSchema = { ...rest };
  if (Array.isArray(type)) {
    const types = type.filter((t) => t !== 'null');
    out.type = types[0];
    if (types.length < type.length) out.nullable = true;
  } else if (type !== undefined) {
    out.type = type;
  }
  if (values !== undefined) out.enum = [...values];
  if (constant !== undefined) out.enum = [constant];
  if (properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, openApiSchema(v)]));
  }
  if (items !== undefined) out.items = openApiSchema(items);
  if (additionalProperties !== undefined) {
    out.additionalProperties =
      typeof additionalProperties === 'boolean' ? additionalProperties : openApiSchema(additionalProperties);
  }
  if (anyOf !== undefined) {
    const options = anyOf.filter((o) => o.type !== 'null');
    if (options.length === 1) {
      const inner = openApiSchema(options[0]);
      Object.assign(out, inner, { description: out.description ?? inner.description });
    } else out.anyOf = options.map(openApiSchema);
    if (options.length < anyOf.length) out.nullable = true;
  }
  if (out.description === undefined) delete out.description;
  return out;
}

/** `@ApiResponse` of a success whose body is a protocol schema. */
export const ApiSchemaResponse = (
  status: number,
  description: string,
  schema: JsonSchema,
): MethodDecorator & ClassDecorator => ApiResponse({ status, description, schema: openApiSchema(schema) });

/** `@ApiBody` of a JSON body validated by hand with a DTO class: its schema from the class-validator rules. */
export const ApiDtoBody = (dto: new () => object): MethodDecorator =>
  ApiBody({ schema: openApiSchema(dtoSchema(dto)) });
