import { Connection, ConnectionTransport, SendLimits } from './connection';
import { TickFlushScheduler } from './flush-scheduler';

/** A socket whose kernel takes what the test says. */
class FakeSocket implements ConnectionTransport {
  readonly kind = 'ws';
  writes: string[] = [];
  buffered = 0;
  /** When set, written bytes stay in the socket's buffer until `take()`. */
  stalled = false;
  closedWith: number | null = null;
  write(frames: readonly string[]): void {
    const s = frames.join('\n');
    this.writes.push(s);
    if (this.stalled) this.buffered += Buffer.byteLength(s);
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  take(bytes = this.buffered): void {
    this.buffered -= Math.min(bytes, this.buffered);
  }
  close(code: number): void {
    this.closedWith = code;
  }
}

const LIMITS: SendLimits = { budgetBytes: 10_000, hardCapBytes: 40_000, writeTimeoutMs: 1000 };
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(limits = LIMITS) {
  let clock = 1_000_000;
  const scheduler = new TickFlushScheduler(limits.budgetBytes / 4, 60_000, () => clock);
  const socket = new FakeSocket();
  const slow: string[] = [];
  const conn = new Connection(
    'c1',
    { userId: 'u', sessionId: 's', roles: [], anonymous: false, metadata: {} },
    socket,
    scheduler,
    limits,
    (c, reason) => {
      slow.push(reason);
      c.close(1013, 'slow consumer');
    },
  );
  conn.sendFirst('{"type":"connected"}');
  scheduler.flush();
  socket.writes = [];
  return {
    scheduler,
    socket,
    conn,
    slow,
    advance: (ms: number) => (clock += ms),
    check: () => conn.checkReader(clock),
  };
}

afterEach(() => jest.useRealTimers());

describe('Connection outbound flow control', () => {
  it('writes at once to an idle socket and batches what else comes in the same turn', async () => {
    const { socket, conn, scheduler } = setup();
    await turn();
    scheduler.flush(); // a new turn: `connected` was written in the last one
    conn.send('a');
    expect(socket.writes).toEqual(['a']);
    conn.send('b');
    conn.send('c');
    expect(socket.writes).toEqual(['a']);
    await turn();
    expect(socket.writes).toEqual(['a', 'b\nc']);
  });

  it('while a request runs, sends its events and its ack in one write at the end of the turn', async () => {
    const { socket, conn } = setup();
    conn.answering = true;
    conn.send('{"type":"room_joined"}');
    conn.send('{"type":"ack"}', undefined, true);
    conn.answering = false;
    expect(socket.writes).toEqual([]);
    await turn();
    expect(socket.writes).toEqual(['{"type":"room_joined"}\n{"type":"ack"}']);
    // Outside a request an idle socket is written at once again (after the turn that wrote).
    await turn();
    conn.send('{"type":"message"}');
    expect(socket.writes).toHaveLength(2);
  });

  it('does not count a burst over the budget as slow while the reader takes it within write_timeout', async () => {
    const { socket, conn, slow, advance, check, scheduler } = setup();
    socket.stalled = true;
    for (let i = 0; i < 30; i++) conn.send('x'.repeat(1000)); // 30 KB: three times the budget
    scheduler.flush();
    scheduler.watch(conn);
    advance(900);
    expect(check()).toBe(true);
    socket.take();
    scheduler.flush();
    socket.take();
    advance(900);
    expect(check()).toBe(false);
    expect(slow).toEqual([]);
    expect(conn.closed).toBe(false);
  });

  it('closes a reader that stays over its budget for write_timeout, though it takes a little', () => {
    const { socket, conn, slow, advance, check, scheduler } = setup();
    socket.stalled = true;
    for (let i = 0; i < 20; i++) conn.send('y'.repeat(1000));
    scheduler.flush();
    scheduler.watch(conn);
    for (let t = 0; t < 10; t++) {
      advance(100);
      socket.take(100); // progress, but the unread bytes stay over 10 KB
      conn.send('y'.repeat(100));
      check();
    }
    advance(100);
    check();
    expect(slow).toEqual(['over 10000 unread bytes for 1000 ms']);
    expect(socket.closedWith).toBe(1013);
  });

  it('closes a reader that takes nothing for write_timeout, even under its budget', () => {
    const { socket, conn, slow, advance, check, scheduler } = setup();
    socket.stalled = true;
    conn.send('z'.repeat(500));
    scheduler.watch(conn);
    advance(999);
    expect(check()).toBe(true);
    advance(1);
    expect(check()).toBe(false);
    expect(slow).toEqual(['nothing read for 1000 ms']);
  });

  it('closes at once past the hard cap and releases what was queued', () => {
    const { socket, conn, slow } = setup();
    socket.stalled = true;
    socket.buffered = 1; // not idle: frames queue
    for (let i = 0; i < 41; i++) conn.send('w'.repeat(1000));
    expect(slow).toEqual(['over 40000 bytes waiting to be written']);
    expect(conn.queued).toBe(0);
    expect(conn.send('more')).toBe(false);
  });

  it('lets one frame larger than the hard cap go to an empty queue', async () => {
    const { socket, conn, slow, scheduler } = setup();
    await turn();
    scheduler.flush();
    expect(conn.send('h'.repeat(50_000))).toBe(true);
    expect(socket.writes).toHaveLength(1);
    expect(slow).toEqual([]);
  });

  it('whenWritable waits until half the budget is free, and settles when the connection closes', async () => {
    const { socket, conn, scheduler, check } = setup();
    expect(conn.whenWritable()).toBeUndefined();
    socket.stalled = true;
    conn.send('v'.repeat(8000));
    scheduler.flush();
    let settled = false;
    const w = conn.whenWritable();
    expect(w).toBeDefined();
    void w!.then(() => (settled = true));
    socket.take(2000);
    check();
    await turn();
    expect(settled).toBe(false);
    socket.take(2000);
    check();
    await turn();
    expect(settled).toBe(true);

    conn.send('v'.repeat(8000));
    scheduler.flush();
    let closedSettled = false;
    void conn.whenWritable()!.then(() => (closedSettled = true));
    conn.markClosed();
    await turn();
    expect(closedSettled).toBe(true);
  });

  it('holds events of a resumed room within the same hard cap', () => {
    const { conn, slow } = setup();
    conn.hold('r');
    for (let i = 0; i < 40; i++) expect(conn.holdIfHeld('r', 'e'.repeat(1000))).toBe(true);
    expect(slow).toEqual([]);
    conn.holdIfHeld('r', 'e'.repeat(1000));
    expect(slow).toEqual(['over 40000 bytes waiting to be written']);
  });
});
