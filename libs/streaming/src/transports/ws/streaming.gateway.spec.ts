import type { Server } from 'ws';
import { defaultStreamingOptions } from '../../config/streaming-defaults';
import type { StreamingOptions } from '../../config/streaming-options.interface';
import type { Connection } from '../../connections/connection';
import type { ConnectionLifecycleService } from '../../connections/connection-lifecycle.service';
import type { ConnectionRegistry } from '../../connections/connection-registry';
import type { StreamingMetricsService } from '../../metrics/streaming-metrics.service';
import type { RequestDispatcherService } from '../../protocol/request-dispatcher.service';
import type { StreamingAuthService } from '../../security/auth.service';
import { StreamingGateway } from './streaming.gateway';

/** A peer whose socket answers pings after `rttMs` (never when `silent`). */
function peer(id: number, rttMs: number, silent = false) {
  const conn = {
    id: String(id),
    closed: false,
    readPaused: false,
    heardAt: performance.now(),
    pings: 0,
    terminated: false,
    transport: {
      kind: 'ws',
      socket: {
        ping: () => {
          conn.pings++;
          if (!silent) setTimeout(() => (conn.heardAt = performance.now()), rttMs);
        },
        terminate: () => {
          conn.terminated = true;
          conn.closed = true;
        },
      },
    },
  };
  return conn;
}

function gatewayOver(peers: ReturnType<typeof peer>[], overrides: Partial<StreamingOptions>) {
  const byId = new Map(peers.map((p) => [p.id, p as unknown as Connection]));
  const registry = {
    get size() {
      return byId.size;
    },
    all: () => byId.values(),
  } as unknown as ConnectionRegistry;
  const gateway = new StreamingGateway(
    { ...defaultStreamingOptions(), ...overrides },
    {} as StreamingAuthService,
    {} as RequestDispatcherService,
    { connections: () => [] } as unknown as ConnectionLifecycleService,
    {} as StreamingMetricsService,
    registry,
  );
  gateway.afterInit({ options: {} } as unknown as Server);
  return gateway;
}

describe('StreamingGateway keep-alive', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('pong_timeout longer than ping_interval: live peers stay, a silent one goes', () => {
    const live = Array.from({ length: 10 }, (_v, i) => peer(i, 50));
    const silent = peer(99, 0, true);
    const gateway = gatewayOver([...live, silent], { pingInterval: 2, pongTimeout: 10 });
    jest.advanceTimersByTime(60_000);
    expect(live.filter((p) => p.terminated)).toEqual([]);
    expect(Math.min(...live.map((p) => p.pings))).toBeGreaterThanOrEqual(25);
    expect(silent.terminated).toBe(true);
    gateway.beforeApplicationShutdown();
  });

  it('pings each peer once per interval, spread over it in slices', () => {
    const peers = Array.from({ length: 300 }, (_v, i) => peer(i, 10));
    const gateway = gatewayOver(peers, { pingInterval: 30, pongTimeout: 10 });
    jest.advanceTimersByTime(1000);
    expect(peers.filter((p) => p.pings > 0)).toHaveLength(10); // one thirtieth
    jest.advanceTimersByTime(29_000);
    expect(peers.every((p) => p.pings === 1)).toBe(true);
    jest.advanceTimersByTime(60_000);
    expect(peers.every((p) => p.pings === 3 && !p.terminated)).toBe(true);
    gateway.beforeApplicationShutdown();
  });

  it('a silent peer is terminated within ping_interval + pong_timeout', () => {
    const silent = peer(1, 0, true);
    const gateway = gatewayOver([silent], { pingInterval: 1, pongTimeout: 1 });
    jest.advanceTimersByTime(1000);
    expect(silent.pings).toBe(1);
    expect(silent.terminated).toBe(false);
    jest.advanceTimersByTime(1000);
    expect(silent.terminated).toBe(true);
    gateway.beforeApplicationShutdown();
  });
});
