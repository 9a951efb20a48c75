import { defaultStreamingOptions } from '../config/streaming-defaults';
import type { StreamingOptions } from '../config/streaming-options.interface';
import type { FanoutService } from '../connections/fanout.service';
import type { StreamingEvents } from '../events/streaming-events';
import type { CounterStore, NodeDirectory, PresenceRecord, PresenceStore, RoomStore } from '../interfaces';
import type { TypingService } from '../typing/typing.service';
import { PresenceService } from './presence.service';

/** A PresenceService on fakes: which records it stores, and when. */
function setUp(overrides: Partial<StreamingOptions> = {}) {
  const options: StreamingOptions = { ...defaultStreamingOptions(), nodeId: 'n1', ...overrides };
  const stored: PresenceRecord[] = [];
  const online = new Set<string>();
  const presenceStore = {
    distributed: false,
    setPresence: jest.fn(async (r: PresenceRecord) => void stored.push(r)),
    getPresence: jest.fn(async () => []),
    addUserNode: jest.fn(async () => undefined),
    removeUserNode: jest.fn(async () => undefined),
    userNodes: jest.fn(async () => []),
  } as unknown as PresenceStore;
  const fanout = {
    registry: { hasUser: (u: string) => online.has(u) },
    publishToRoom: jest.fn(async () => undefined),
  } as unknown as FanoutService;
  const roomStore = { userRooms: jest.fn(async () => ['r1']) } as unknown as RoomStore;
  const service = new PresenceService(
    {} as CounterStore,
    roomStore,
    presenceStore,
    { listNodes: async () => [] } as unknown as NodeDirectory,
    options,
    fanout,
    { emit: () => undefined } as unknown as StreamingEvents,
    {} as TypingService,
  );
  const connect = async (u: string): Promise<void> => {
    online.add(u);
    await service.connected(u);
  };
  return { service, stored, connect, fanout };
}

describe('PresenceService upkeep', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_700_000_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('refreshes each user record once past half its TTL, not at every sweep', async () => {
    // Defaults: TTL max(300, 30, 3 × 60) = 300 s, sweeps every 60 s.
    const { service, stored, connect } = setUp();
    for (let i = 0; i < 100; i++) await connect(`u${i}`);
    await connect('u0'); // a second connection of a user costs nothing more
    expect(stored).toHaveLength(100); // each user's `online`
    stored.length = 0;
    const refreshes: number[] = [];
    for (let sweep = 1; sweep <= 10; sweep++) {
      jest.setSystemTime(Date.now() + 60_000);
      for (let i = 0; i < 100; i++) service.touch(`u${i}`); // active: never away
      await service.sweep();
      refreshes.push(stored.length);
      stored.length = 0;
    }
    // Due at 150 s: refreshed at the sweeps of 180 s, 360 s, 540 s: once per user each time.
    expect(refreshes).toEqual([0, 0, 100, 0, 0, 100, 0, 0, 100, 0]);
  });

  it('an idle user goes away at the first sweep past presence_timeout', async () => {
    const { service, stored, connect } = setUp({ presenceTimeout: 2, presenceCleanup: 1 });
    await connect('idle');
    stored.length = 0;
    jest.setSystemTime(Date.now() + 1000);
    await service.sweep();
    expect(stored.map((r) => r.status)).toEqual([]);
    jest.setSystemTime(Date.now() + 1500);
    await service.sweep();
    expect(stored.map((r) => r.status)).toEqual(['away']);
  });

  it('sweeps do not stack while the backend is slow', async () => {
    const { service, stored, connect } = setUp();
    await connect('a');
    jest.setSystemTime(Date.now() + 200_000);
    const first = service.sweep();
    const second = service.sweep();
    await Promise.all([first, second]);
    expect(stored.filter((r) => r.userId === 'a')).toHaveLength(2); // online, then one refresh
  });
});
