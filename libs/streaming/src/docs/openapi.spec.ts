/**
 * OpenAPI pieces: protocol schemas in OpenAPI 3.0 form, and the REST DTOs'
 * `@ApiProperty` decorators agreeing with their class-validator rules (the
 * decorators are written beside the rules; this keeps them from drifting).
 */
import 'reflect-metadata';
import { protocolSchemas, s } from '@nest-streaming/protocol';
import {
  ApiDisconnectBody,
  ApiHistoryQuery,
  ApiPublishBody,
  ApiRoomMessageBody,
} from '../api/server-api.dto';
import { dtoSchema } from './dto-schema';
import { openApiSchema, STREAMING_API_KEY_SECURITY, streamingOpenApiSecuritySchemes } from './openapi';

describe('openApiSchema', () => {
  it('writes null types as nullable and const as enum', () => {
    expect(
      openApiSchema(s.object({ n: s.nullable(s.integer({ minimum: 1 })), o: s.optional(s.string()) })),
    ).toEqual({
      type: 'object',
      properties: { n: { type: 'integer', minimum: 1, nullable: true }, o: { type: 'string' } },
      required: ['n'],
    });
    expect(openApiSchema({ type: 'string', const: 'x' })).toEqual({ type: 'string', enum: ['x'] });
    expect(openApiSchema(s.nullable(s.enum(['a', 'b']), { description: 'd' }))).toEqual({
      type: 'string',
      enum: ['a', 'b'],
      nullable: true,
      description: 'd',
    });
    const room = openApiSchema(protocolSchemas().WireRoom);
    expect(room.properties?.max_members).toMatchObject({ type: 'integer', nullable: true });
    expect(JSON.stringify(room)).not.toContain('"null"');
  });
});

describe('the REST DTOs', () => {
  it.each([ApiPublishBody, ApiRoomMessageBody, ApiDisconnectBody, ApiHistoryQuery])(
    '%p: @ApiProperty says required exactly where class-validator does',
    (dto: new () => object) => {
      const names = (Reflect.getMetadata('swagger/apiModelPropertiesArray', dto.prototype) as string[]).map(
        (n) => n.replace(/^:/, ''),
      );
      const schema = dtoSchema(dto);
      expect(names.sort()).toEqual(Object.keys(schema.properties ?? {}).sort());
      const required = names.filter(
        (n) =>
          (Reflect.getMetadata('swagger/apiModelProperties', dto.prototype, n) as { required?: boolean })
            .required !== false,
      );
      expect(required.sort()).toEqual([...(schema.required ?? [])].sort());
    },
  );
});

it('names the security schemes the controllers use', () => {
  const schemes = streamingOpenApiSecuritySchemes();
  expect(schemes[STREAMING_API_KEY_SECURITY]).toMatchObject({
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
  });
  expect(schemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
});
