/**
 * The AsyncAPI 3 document of the socket protocol, generated at run time from
 * what the server runs: the request types of the dispatcher's handler table
 * with their DTO classes (class-validator rules), and the server events of
 * `@nest-streaming/protocol`'s table of events (which the wire types
 * are derived from). Nothing in it is written a second time by hand.
 */
import { protocolSchemas, type JsonSchema, type ServerEventSpec } from '@nest-streaming/protocol';
import { dtoSchema } from './dto-schema';
import { requestTable, type RequestSpec } from './request-table';

/** Options of {@link buildAsyncApiDocument}. */
export interface AsyncApiDocumentOptions {
  /** `info.title`. Default `nest-streaming socket protocol`. */
  title?: string;
  /** `info.version`: the version of your API. Default `1.0.0`. */
  version?: string;
  /** `info.description`. Default: a summary of the framing rules (PROTOCOL.md section 3). */
  description?: string;
  /** `host[:port]` the clients connect to. Default `localhost:3000`. */
  host?: string;
  /** `wss` and `https` instead of `ws` and `http`. Default false. */
  secure?: boolean;
  /** Path of the WebSocket endpoint (the `wsPath` option). Default `/ws`. */
  wsPath?: string;
  /** Path of the SSE endpoint (`routes.sse` after `routes.prefix`), or `false` without SSE. Default `/sse`. */
  ssePath?: string | false;
}

/** An AsyncAPI 3.0 document (plain JSON). */
export type AsyncApiDocument = {
  asyncapi: '3.0.0';
  info: { title: string; version: string; description?: string };
  defaultContentType: string;
  servers: Record<string, unknown>;
  channels: Record<string, unknown>;
  operations: Record<string, unknown>;
  components: Record<string, unknown>;
};

/** One-line summaries of the known request types (a type missing here is still documented). */
const REQUEST_SUMMARIES: Record<string, string> = {
  ping: 'Answered with `pong` (carrying the request `id`).',
  refresh_token: 'Continue the connection under a new token; ack `{expires_at}`.',
  create_room: 'Create a room (the caller becomes `owner`); ack `{room}`.',
  join_room: 'Join a room: `room_joined` to the joiner, `user_joined` to the others.',
  leave_room: 'Leave a room: `room_left`, and `user_left` to the others.',
  send_message: 'Send a message: `message` to every member connection; ack `{message_id, seq}`.',
  edit_message: 'Edit a message (author or moderator+): `message_edited`.',
  delete_message: 'Delete a message (author or moderator+): `message_deleted`.',
  add_reaction: 'Add a reaction: `reaction_added`.',
  remove_reaction: 'Remove a reaction: `reaction_removed`.',
  get_history: 'A page of history, oldest first; ack `{messages}`.',
  get_thread: 'A thread: its first message, then its replies, oldest first; ack `{messages}`.',
  resume: 'Replay missed messages per room, then `resumed`, then the ack.',
  start_typing: '`typing {typing: true}` to the other members.',
  stop_typing: '`typing {typing: false}` to the other members.',
  set_role: "Change a member's role: `role_changed`.",
  invite: 'Invite a user to a room: `room_invitation` to the invitee.',
  moderate: 'Ban, unban, kick, mute or unmute a member: `member_*` events.',
  update_room: "Change a room's settings: `room_updated`.",
  get_moderation_log: "A room's moderation log; ack `{entries}`.",
  subscribe: 'Subscribe to a channel or pattern (with filters); then `channel_message`.',
  unsubscribe: 'Unsubscribe from a channel or pattern.',
  publish: 'Publish on a channel: `channel_message` to every matching subscriber.',
  create_channel: 'Create a channel; ack `{channel}`.',
  list_channels: 'The channels the caller may see; ack `{channels}`.',
  find_channels: 'The channels matching a pattern; ack `{channels}`.',
  set_presence: 'Set presence: `presence` to users sharing a room.',
  get_presence: 'Presence of a room or of users sharing a room with the caller; ack `{presence}`.',
  open_direct: 'The direct room of the caller and another user, created on first use; ack `{room}`.',
  mark_read:
    'Mark a room read up to a seq (only forward): `read_state` to the user; ack `{room_id, last_read_seq}`.',
  get_unread: 'Read state and unread count of every room of the caller; ack `{rooms}`.',
};

const DEFAULT_DESCRIPTION = [
  'The nest-streaming socket protocol (docs/PROTOCOL.md). Every WebSocket text frame holds one JSON',
  'envelope, or several separated by `\\n`. Client → server `{type, id?, data?}`; server → client',
  '`{type, id?, data}`. A request with an `id` is answered exactly once, by `ack` (its result) or',
  '`error` with the same `id`; the events it causes are sent as well. The first envelope of every',
  'connection is `connected`. SSE streams carry the same events as `event: <type>` / `data: <data>`.',
].join(' ');

const ref = ($ref: string) => ({ $ref });
const typeConst = (type: string): JsonSchema => ({ type: 'string', const: type });

/** Message keys: requests and events may share a type name, so each kind has its own prefix. */
const requestKey = (type: string) => `request.${type}`;
const eventKey = (type: string) => `event.${type}`;
const sseKey = (type: string) => `sse.${type}`;

function requestMessage(r: RequestSpec): Record<string, unknown> {
  const data: JsonSchema = r.dto ? ref(`#/components/schemas/${r.dto.name}`) : { type: 'object' };
  const needsData = r.dto !== undefined && (dtoSchema(r.dto).required?.length ?? 0) > 0;
  return {
    name: r.type,
    title: r.type,
    summary: REQUEST_SUMMARIES[r.type] ?? `The \`${r.type}\` request.`,
    payload: {
      type: 'object',
      required: needsData ? ['type', 'data'] : ['type'],
      properties: {
        type: typeConst(r.type),
        id: { type: 'string', description: 'Answered by `ack` or `error` with the same id.' },
        data: data,
      },
    },
    correlationId: ref('#/components/correlationIds/id'),
  };
}

function eventMessage(type: string, spec: ServerEventSpec): Record<string, unknown> {
  return {
    name: type,
    title: type,
    summary: spec.summary,
    payload: {
      type: 'object',
      required: ['type', 'data'],
      properties: {
        type: typeConst(type),
        id: { type: 'string', description: 'The id of the request this answers, if any.' },
        data: spec.data,
      },
    },
    correlationId: ref('#/components/correlationIds/id'),
  };
}

function sseMessage(type: string, spec: ServerEventSpec): Record<string, unknown> {
  return {
    name: type,
    title: type,
    summary: spec.summary,
    description: `The SSE event \`event: ${type}\`; its \`data:\` line holds this JSON (a room \`message\` also has \`id: <room_id>:<seq>\`).`,
    payload: spec.data,
  };
}

const withSlash = (path: string): string => `/${path.replace(/^\/+/, '')}`;

/**
 * The AsyncAPI 3.0 document of the socket protocol: a `receive` operation
 * per request type (named after it, replied to on the same channel by `ack`
 * or `error`, `pong` for `ping`), a `send` operation per server event, and,
 * with SSE, the SSE channel and its events.
 */
export function buildAsyncApiDocument(options: AsyncApiDocumentOptions = {}): AsyncApiDocument {
  const host = options.host ?? 'localhost:3000';
  const wsPath = withSlash(options.wsPath ?? '/ws');
  const ssePath = options.ssePath === false ? undefined : withSlash(options.ssePath ?? '/sse');
  const requests = requestTable();
  const events = Object.entries(protocolSchemas().events) as Array<[string, ServerEventSpec]>;

  const schemas: Record<string, JsonSchema> = {};
  for (const r of requests) if (r.dto) schemas[r.dto.name] = dtoSchema(r.dto);

  const messages: Record<string, unknown> = {};
  const wsMessages: Record<string, unknown> = {};
  const sseMessages: Record<string, unknown> = {};
  for (const r of requests) {
    messages[requestKey(r.type)] = requestMessage(r);
    wsMessages[requestKey(r.type)] = ref(`#/components/messages/${requestKey(r.type)}`);
  }
  for (const [type, spec] of events) {
    if (spec.only !== 'sse') {
      messages[eventKey(type)] = eventMessage(type, spec);
      wsMessages[eventKey(type)] = ref(`#/components/messages/${eventKey(type)}`);
    }
    if (ssePath && spec.only !== 'ws') {
      messages[sseKey(type)] = sseMessage(type, spec);
      sseMessages[sseKey(type)] = ref(`#/components/messages/${sseKey(type)}`);
    }
  }

  const ws = ref('#/channels/websocket');
  const wsMessage = (key: string) => ref(`#/channels/websocket/messages/${key}`);
  const operations: Record<string, unknown> = {};
  for (const r of requests) {
    const answer = r.type === 'ping' ? 'pong' : 'ack';
    operations[r.type] = {
      action: 'receive',
      channel: ws,
      title: r.type,
      summary: REQUEST_SUMMARIES[r.type] ?? `The \`${r.type}\` request.`,
      messages: [wsMessage(requestKey(r.type))],
      reply: { channel: ws, messages: [wsMessage(eventKey(answer)), wsMessage(eventKey('error'))] },
    };
  }
  for (const [type, spec] of events) {
    if (spec.only === 'sse') continue;
    operations[`emit_${type}`] = {
      action: 'send',
      channel: ws,
      title: type,
      summary: spec.summary,
      messages: [wsMessage(eventKey(type))],
    };
  }

  const security = [ref('#/components/securitySchemes/bearer'), ref('#/components/securitySchemes/token')];
  const servers: Record<string, unknown> = {
    websocket: {
      host,
      protocol: options.secure ? 'wss' : 'ws',
      description: 'The WebSocket endpoint.',
      security,
    },
  };
  const channels: Record<string, unknown> = {
    websocket: {
      address: wsPath,
      title: 'WebSocket',
      description: 'Requests from the client, events and answers from the server, as JSON envelopes.',
      servers: [ref('#/servers/websocket')],
      messages: wsMessages,
      bindings: {
        ws: {
          method: 'GET',
          query: {
            type: 'object',
            properties: { token: { type: 'string', description: 'The JWT, unless sent in the header.' } },
          },
          bindingVersion: '0.1.0',
        },
      },
    },
  };
  if (ssePath) {
    servers.http = {
      host,
      protocol: options.secure ? 'https' : 'http',
      description: 'Server-Sent Events (GET), same events as the WebSocket.',
      security,
    };
    channels.sse = {
      address: ssePath,
      title: 'Server-Sent Events',
      description:
        '`GET` with `?rooms=a,b` (joined like `join_room`), `?channels=x.y,user.*.alerts` (subscribed), ' +
        '`?token=` and `Last-Event-ID` (or `?last_event_id=`, `<room_id>:<seq>` joined by commas) to replay ' +
        'missed room messages first. Subscriptions change over `POST <sse>/<connection_id>/subscriptions` and `/unsubscribe`.',
      servers: [ref('#/servers/http')],
      messages: sseMessages,
    };
    operations.sse_stream = {
      action: 'send',
      channel: ref('#/channels/sse'),
      title: 'SSE stream',
      summary: 'The events of an SSE stream.',
      messages: Object.keys(sseMessages).map((key) => ref(`#/channels/sse/messages/${key}`)),
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: options.title ?? 'nest-streaming socket protocol',
      version: options.version ?? '1.0.0',
      description: options.description ?? DEFAULT_DESCRIPTION,
    },
    defaultContentType: 'application/json',
    servers,
    channels,
    operations,
    components: {
      schemas,
      messages,
      correlationIds: {
        id: {
          description: 'A request and its `ack` or `error` (or `pong`) carry the same `id`.',
          location: '$message.payload#/id',
        },
      },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'The JWT in `Authorization: Bearer <jwt>` (the header name is configurable).',
        },
        token: { type: 'httpApiKey', name: 'token', in: 'query', description: 'The JWT in `?token=`.' },
      },
    },
  };
}
