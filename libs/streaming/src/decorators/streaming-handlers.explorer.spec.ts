import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  StreamingEvents,
  type ChannelMessageEventPayload,
  type RoomMessageEvent,
  type TypingEvent,
} from '../events/streaming-events';
import { OnChannel } from './on-channel.decorator';
import { OnConnect, OnDisconnect } from './on-connection.decorator';
import { OnTyping } from './on-typing.decorator';
import {
  STREAMING_HANDLER_METADATA,
  getStreamingHandlerMetadata,
  roomPatternMatches,
} from './streaming-handler.metadata';
import { StreamingHandlersExplorer } from './streaming-handlers.explorer';
import { SubscribeRoom } from './subscribe-room.decorator';

/** Let the hub's microtasks and the handlers' awaits run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const roomEvent = (roomId: string, content = 'hi'): RoomMessageEvent => ({
  roomId,
  message: {
    id: `m-${roomId}`,
    seq: 1,
    room_id: roomId,
    user_id: 'u',
    content,
    metadata: {},
    timestamp: new Date().toISOString(),
    reactions: {},
  },
});

const channelEvent = (channel: string): ChannelMessageEventPayload => ({
  channel,
  data: {},
  metadata: {},
  publisherId: null,
  timestamp: new Date().toISOString(),
});

describe('roomPatternMatches', () => {
  it.each([
    ['*', 'anything', true],
    ['*', '', true],
    ['room-1', 'room-1', true],
    ['room-1', 'room-12', false],
    ['support-*', 'support-', true],
    ['support-*', 'support-eu', true],
    ['support-*', 'sales-eu', false],
    ['*-vip', 'gold-vip', true],
    ['a*b*c', 'a-x-b-y-c', true],
    ['a*b*c', 'a-x-c', false],
    ['a.b', 'axb', false],
    ['(x)+', '(x)+', true],
  ])('%s vs %s → %s', (pattern, roomId, expected) => {
    expect(roomPatternMatches(pattern, roomId)).toBe(expected);
  });
});

describe('handler decorators', () => {
  it('record their metadata in source order, stacking', () => {
    class C {
      @SubscribeRoom('a')
      @SubscribeRoom()
      @OnChannel('x.>')
      m(): void {}
    }
    const method = Object.getOwnPropertyDescriptor(C.prototype, 'm')!.value as unknown;
    expect(getStreamingHandlerMetadata(method)).toEqual([
      { event: 'room_message', pattern: 'a' },
      { event: 'room_message', pattern: '*' },
      { event: 'channel_message', pattern: 'x.>' },
    ]);
    expect(Reflect.getMetadata(STREAMING_HANDLER_METADATA, method as object)).toHaveLength(3);
  });

  it('refuse invalid patterns when the class is defined', () => {
    expect(() => SubscribeRoom('')).toThrow(/@SubscribeRoom\(""\): the room pattern must not be empty/);
    expect(() => OnChannel('a..b')).toThrow(/@OnChannel\("a..b"\): .*empty token/);
    expect(() => OnChannel('>.a')).toThrow(/only allowed as the last token/);
  });
});

describe('StreamingHandlersExplorer', () => {
  let moduleRef: TestingModule;
  let events: StreamingEvents;
  const calls: string[] = [];

  class Base {
    protected readonly tag: string = 'base';

    @OnTyping()
    inherited(e: TypingEvent): void {
      calls.push(`${this.tag}.inherited:${e.roomId}`);
    }
  }

  @Injectable()
  class Handlers extends Base {
    protected override readonly tag = 'handlers';

    @SubscribeRoom('room-1')
    exact({ roomId }: RoomMessageEvent): void {
      calls.push(`${this.tag}.exact:${roomId}`);
    }

    @SubscribeRoom('support-*')
    @SubscribeRoom('sales-*')
    @SubscribeRoom('support-eu')
    globs({ roomId }: RoomMessageEvent): void {
      calls.push(`${this.tag}.globs:${roomId}`);
    }

    @OnChannel('news.*')
    @OnChannel('alerts.>')
    channels({ channel }: ChannelMessageEventPayload): void {
      calls.push(`${this.tag}.channels:${channel}`);
    }

    @OnConnect()
    @OnDisconnect()
    both(): void {
      calls.push(`${this.tag}.both`);
    }

    @SubscribeRoom()
    async failing({ message }: RoomMessageEvent): Promise<void> {
      await settle();
      if (message.content === 'boom') throw new Error('kaboom');
    }
  }

  class SharedValue {
    @OnTyping()
    typing(): void {
      calls.push('shared.typing');
    }
  }
  const SHARED = new SharedValue();

  beforeEach(async () => {
    calls.length = 0;
    moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [
        StreamingEvents,
        StreamingHandlersExplorer,
        Handlers,
        { provide: 'ALIAS', useExisting: Handlers },
        { provide: 'SHARED_1', useValue: SHARED },
        { provide: 'SHARED_2', useValue: SHARED },
      ],
    }).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    events = moduleRef.get(StreamingEvents);
  });

  afterEach(async () => {
    await moduleRef.close();
  });

  it('filters rooms by exact id and globs, calling a multi-pattern method once per event', async () => {
    for (const id of ['room-1', 'room-12', 'support-eu', 'sales-x', 'other'])
      events.emit('room_message', roomEvent(id));
    await settle();
    expect(calls.sort()).toEqual(
      ['handlers.exact:room-1', 'handlers.globs:support-eu', 'handlers.globs:sales-x'].sort(),
    );
  });

  it('filters channels NATS-style', async () => {
    for (const ch of ['news.a', 'news.a.b', 'alerts.x.y', 'alerts', 'sports.a'])
      events.emit('channel_message', channelEvent(ch));
    await settle();
    expect(calls.sort()).toEqual(['handlers.channels:alerts.x.y', 'handlers.channels:news.a'].sort());
  });

  it('binds handlers to their instance, finds inherited methods, skips aliases and duplicate instances', async () => {
    events.emit('typing', { roomId: 'r', userId: 'u', typing: true });
    events.emit('connect', {} as never);
    events.emit('disconnect', {} as never);
    await settle();
    expect(calls.sort()).toEqual(
      ['handlers.both', 'handlers.both', 'handlers.inherited:r', 'shared.typing'].sort(),
    );
  });

  it('logs a failing handler by class and method and keeps it registered', async () => {
    const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      events.emit('room_message', roomEvent('room-1', 'boom'));
      await settle();
      await settle();
      expect(error).toHaveBeenCalledWith(
        expect.stringContaining('@SubscribeRoom handler Handlers.failing failed: kaboom'),
        expect.stringContaining('kaboom'),
      );
      events.emit('room_message', roomEvent('room-1'));
      await settle();
      expect(calls).toEqual(['handlers.exact:room-1', 'handlers.exact:room-1']);
    } finally {
      error.mockRestore();
    }
  });

  it('bootstraps once and unregisters everything at shutdown', async () => {
    const explorer = moduleRef.get(StreamingHandlersExplorer);
    // Handlers: exact, globs, channels, both×2, failing, inherited; SHARED: typing.
    expect(explorer.registeredCount).toBe(8);
    explorer.onApplicationBootstrap();
    expect(explorer.registeredCount).toBe(8);
    await moduleRef.close();
    expect(explorer.registeredCount).toBe(0);
    for (const e of ['room_message', 'channel_message', 'typing', 'connect', 'disconnect'] as const) {
      expect(events.has(e)).toBe(false);
    }
  });
});
