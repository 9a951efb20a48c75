import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { protocolSchemas, s } from '@nest-streaming/protocol';
import { openApiSchema, StreamingHttpErrorBody } from '@nest-streaming/streaming';

const ERRORS: Record<number, string> = {
  400: 'Bad input.',
  401: 'No token, or an invalid one.',
  403: 'Not allowed.',
  404: 'Unknown room.',
  409: 'Conflict.',
  429: 'Rate limited (`Retry-After`).',
  501: 'The server verifies tokens with a public key or JWKS URL: no demo login.',
};

/** `@ApiResponse` for each error status, with the REST error body (PROTOCOL.md section 1). */
export const ApiErrors = (...statuses: number[]) =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: ERRORS[status] ?? 'Error.', type: StreamingHttpErrorBody }),
    ),
  );

const { ModerationEvent, RoomJoinedEvent, WireMember, WireMessage, WireRoom } = protocolSchemas();

/** OpenAPI schemas of the demo's answers, from the protocol's schemas (the wire types are derived from them too). */
export const schemas = {
  room: openApiSchema(WireRoom),
  rooms: openApiSchema(s.object({ rooms: s.array(WireRoom) })),
  roomDetails: {
    allOf: [openApiSchema(WireRoom), openApiSchema(s.object({ members: s.array(WireMember) }))],
  },
  roomJoined: openApiSchema(RoomJoinedEvent),
  roomId: openApiSchema(s.object({ room_id: s.string() })),
  messages: openApiSchema(s.object({ messages: s.array(WireMessage) })),
  invitation: openApiSchema(s.object({ room_id: s.string(), user_id: s.string() })),
  moderation: openApiSchema(ModerationEvent),
  moderationLog: openApiSchema(
    s.object({
      entries: s.array(
        s.object({
          action: s.string(),
          room_id: s.string(),
          moderator_id: s.nullable(s.string()),
          target_id: s.string(),
          reason: s.string(),
          at: s.timestamp(),
          duration_s: s.optional(s.integer()),
          role: s.optional(s.string()),
        }),
      ),
    }),
  ),
};
