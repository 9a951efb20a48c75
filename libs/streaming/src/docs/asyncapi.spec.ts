/**
 * The AsyncAPI document is valid AsyncAPI 3 (checked by @asyncapi/parser, so
 * `npm test` validates it), and it follows the code: every request type of
 * the dispatcher's handler table is an operation, with the schema of its DTO,
 * and every server event of the protocol's table is a message.
 */
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { protocolSchemas, type ServerEventType } from '@nest-streaming/protocol';
import { IsInt, IsString, Min } from 'class-validator';
import { RequestDispatcherService } from '../protocol/request-dispatcher.service';
import { buildAsyncApiDocument, type AsyncApiDocument } from './asyncapi';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** The dispatcher's own list of request types, from a real instance (its services are never called here). */
function dispatcherTypes(): string[] {
  const deps = new Array<unknown>(RequestDispatcherService.length).fill({});
  return (Reflect.construct(RequestDispatcherService, deps) as RequestDispatcherService).types;
}

/** Parse with @asyncapi/parser: the diagnostics of error severity (0), as readable lines. */
async function parseErrors(doc: AsyncApiDocument): Promise<string[]> {
  const { document, diagnostics } = await new Parser().parse(doc);
  const errors = diagnostics
    .filter((d) => Number(d.severity) === Number(DiagnosticSeverity.Error))
    .map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`);
  if (!document && errors.length === 0) errors.push('no document');
  return errors;
}

const schemaOf = (doc: AsyncApiDocument, name: string): Json =>
  (doc.components.schemas as Record<string, Json>)[name];

describe('buildAsyncApiDocument', () => {
  const doc = buildAsyncApiDocument();

  it('is a valid AsyncAPI 3 document (no error from @asyncapi/parser)', async () => {
    expect(doc.asyncapi).toMatch(/^3\./);
    expect(await parseErrors(doc)).toEqual([]);
  }, 60_000);

  it('is valid with other options too (wss, prefix paths, no SSE)', async () => {
    const other = buildAsyncApiDocument({
      host: 'chat.example:443',
      secure: true,
      wsPath: 'realtime',
      ssePath: false,
      title: 'Chat',
      version: '2.3.0',
    });
    expect(await parseErrors(other)).toEqual([]);
    expect(other.servers).toEqual({
      websocket: expect.objectContaining({ host: 'chat.example:443', protocol: 'wss' }),
    });
    expect(other.channels).toEqual({ websocket: expect.objectContaining({ address: '/realtime' }) });
    expect(other.info).toMatchObject({ title: 'Chat', version: '2.3.0' });
  }, 60_000);

  it('has an operation for every request type of the dispatcher, named after it', () => {
    const types = dispatcherTypes();
    expect(types).toEqual(expect.arrayContaining(['ping', 'send_message', 'subscribe', 'refresh_token']));
    for (const type of types) {
      const op = (doc.operations as Json)[type];
      expect({ type, action: op?.action }).toEqual({ type, action: 'receive' });
      const message = (doc.components.messages as Json)[`request.${type}`];
      expect(message.name).toBe(type);
      expect(message.payload.properties.type).toEqual({ type: 'string', const: type });
      expect(op.reply.messages.length).toBeGreaterThan(0);
    }
    const receive = Object.entries(doc.operations as Json).filter(([, op]) => op.action === 'receive');
    expect(receive.map(([id]) => id).sort()).toEqual([...types].sort());
  });

  it('has a message for every server event, with its schema from the protocol table', () => {
    const messages = doc.components.messages as Json;
    const events = protocolSchemas().events;
    for (const type of Object.keys(events) as ServerEventType[]) {
      const spec = events[type];
      const key = 'only' in spec && spec.only === 'sse' ? `sse.${type}` : `event.${type}`;
      expect({ type, name: messages[key]?.name }).toEqual({ type, name: type });
    }
    expect(messages['event.message'].payload.properties.data).toBe(events.message.data);
    expect(messages['sse.heartbeat'].payload).toBe(events.heartbeat.data);
    expect((doc.operations as Json).emit_room_joined.action).toBe('send');
    expect((doc.operations as Json).ping.reply.messages).toEqual([
      { $ref: '#/channels/websocket/messages/event.pong' },
      { $ref: '#/channels/websocket/messages/event.error' },
    ]);
  });

  it('describes request data from the DTOs’ class-validator rules (inherited fields first)', () => {
    expect(schemaOf(doc, 'SendMessageDto')).toEqual({
      type: 'object',
      properties: {
        room_id: { type: 'string', minLength: 1, maxLength: 128 },
        content: { type: 'string' },
        metadata: { type: 'object' },
        reply_to: { type: 'string', minLength: 1, maxLength: 128 },
      },
      required: ['room_id', 'content'],
    });
    expect(schemaOf(doc, 'GetThreadDto')).toMatchObject({
      properties: { thread_id: { type: 'string' }, limit: { type: 'integer', minimum: 1 } },
      required: ['room_id', 'thread_id'],
    });
    expect(schemaOf(doc, 'CreateRoomDto').properties.max_members).toEqual({
      type: ['integer', 'null'],
      minimum: 1,
    });
    expect(schemaOf(doc, 'SetPresenceDto').properties.status).toEqual({
      type: 'string',
      enum: ['online', 'away', 'busy', 'offline'],
    });
    expect(schemaOf(doc, 'GetPresenceDto')).toMatchObject({
      properties: { user_ids: { type: 'array', maxItems: 1000, items: { type: 'string' } } },
    });
    expect(schemaOf(doc, 'GetPresenceDto').required).toBeUndefined();
    const send = (doc.components.messages as Json)['request.send_message'];
    expect(send.payload.properties.data).toEqual({ $ref: '#/components/schemas/SendMessageDto' });
    expect(send.payload.required).toEqual(['type', 'data']);
    expect((doc.components.messages as Json)['request.ping'].payload.required).toEqual(['type']);
  });

  it('picks up a request type added to the handler table, without a change to the generator', async () => {
    class ShoutDto {
      @IsString() room_id!: string;
      @IsInt() @Min(1) volume!: number;
    }
    const proto = RequestDispatcherService.prototype as unknown as { buildHandlers(): Json };
    const original = Object.getOwnPropertyDescriptor(proto, 'buildHandlers')!.value as (
      this: unknown,
    ) => Json;
    const spy = jest.spyOn(proto, 'buildHandlers').mockImplementation(function (this: unknown) {
      return { ...original.call(this), shout: { dto: ShoutDto, run: () => Promise.resolve({}) } };
    });
    try {
      expect(dispatcherTypes()).toContain('shout');
      const withShout = buildAsyncApiDocument();
      expect((withShout.operations as Json).shout).toMatchObject({ action: 'receive' });
      expect(schemaOf(withShout, 'ShoutDto')).toEqual({
        type: 'object',
        properties: { room_id: { type: 'string' }, volume: { type: 'integer', minimum: 1 } },
        required: ['room_id', 'volume'],
      });
      expect(await parseErrors(withShout)).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  }, 60_000);
});
