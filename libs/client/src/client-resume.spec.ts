/**
 * StreamingClient against a scripted WebSocket server: resuming rooms after a reconnect (gaps,
 * the room-by-room fallback, rooms the server no longer has).
 */
import { FakeSocket, connected, msg, rateLimited, tick } from '../test/fake-server';

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('StreamingClient over WebSocket (fake server)', () => {
  it('emits gap for rooms listed in resumed.gaps and carries on from the latest seq', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 2) }, { type: 'message', data: msg('r2', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gaps: unknown[] = [];
    const got: string[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('message', (m) => got.push(`${m.room_id}:${m.seq}`));
    s2.accept();
    await tick();
    s2.push({ type: 'message', data: msg('r2', 3) });
    s2.ack('resume', { rooms: { r1: 50, r2: 3 }, gaps: ['r1'] });
    await tick();
    expect(gaps).toEqual([{ room_id: 'r1', reason: 'retention', last_seq: 2, latest_seq: 50 }]);
    expect(got).toEqual(['r2:3']);
    expect(client.lastSeqs).toEqual({ r1: 50, r2: 3 });
    s2.push({ type: 'message', data: msg('r1', 51) });
    expect(got).toEqual(['r2:3', 'r1:51']);
    expect(gaps).toHaveLength(1);
  });

  it('resumes room by room when one room is no longer the user’s', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('gone', 1) }, { type: 'message', data: msg('ok', 1) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    s2.accept();
    await tick();
    s2.push({ type: 'error', id: s2.request('resume').id, data: { code: 'not_room_member', message: 'no' } });
    await tick();
    // Room by room, one after the other.
    expect(
      s2
        .requests('resume')
        .slice(1)
        .map((r) => r.data),
    ).toEqual([{ rooms: { gone: 1 } }]);
    s2.push({
      type: 'error',
      id: s2.requests('resume')[1].id,
      data: { code: 'not_room_member', message: 'no' },
    });
    await tick();
    expect(s2.requests('resume')[2].data).toEqual({ rooms: { ok: 1 } });
    s2.push(
      { type: 'message', data: msg('ok', 2) },
      { type: 'ack', id: s2.requests('resume')[2].id, data: { rooms: { ok: 2 } } },
    );
    await tick();
    expect(client.state).toBe('open');
    expect(client.lastSeqs).toEqual({ ok: 2 });
  });

  it('retries a resume refused with rate_limited after a reconnect', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 1) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gaps: unknown[] = [];
    const errors: unknown[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('error', (e) => errors.push(e));
    s2.accept();
    await tick();
    s2.push(rateLimited(s2.request('resume').id, 100));
    await jest.advanceTimersByTimeAsync(99);
    expect(s2.requests('resume')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(s2.requests('resume').map((r) => r.data)).toEqual([{ rooms: { r1: 1 } }, { rooms: { r1: 1 } }]);
    s2.ack('resume', { rooms: { r1: 1 } });
    await tick();
    expect(client.state).toBe('open');
    expect(gaps).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('emits rooms_gone for rooms resumed.gone lists and stops resuming them', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('lost', 3) }, { type: 'message', data: msg('kept', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    const gaps: unknown[] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    client.on('gap', (g) => gaps.push(g));
    s2.accept();
    await tick();
    expect(s2.request('resume').data).toEqual({ rooms: { lost: 3, kept: 2 } });
    s2.ack('resume', { rooms: { kept: 2 }, errors: { lost: 'room_not_found' }, gone: ['lost'] });
    await tick();
    expect(client.state).toBe('open');
    expect(gone).toEqual([['lost']]);
    expect(gaps).toEqual([]);
    expect(client.lastSeqs).toEqual({ kept: 2 });
    s2.drop();
    await jest.advanceTimersByTimeAsync(10);
    FakeSocket.last.accept();
    await tick();
    expect(FakeSocket.last.request('resume').data).toEqual({ rooms: { kept: 2 } });
  });

  it('reads resumed.errors from servers without gone: room_not_found is gone, lost membership is forgotten', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push(
      { type: 'message', data: msg('deleted', 1) },
      { type: 'message', data: msg('kicked', 1) },
      { type: 'message', data: msg('kept', 1) },
    );
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    s2.accept();
    await tick();
    s2.ack('resume', {
      rooms: { kept: 1 },
      errors: { deleted: 'room_not_found', kicked: 'not_room_member' },
    });
    await tick();
    expect(gone).toEqual([['deleted']]);
    expect(client.lastSeqs).toEqual({ kept: 1 });
  });

  it('keeps gone and errors of the room-by-room resumes (a whole resume refused for another room)', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('kicked', 1) }, { type: 'message', data: msg('lost', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    s2.accept();
    await tick();
    // Nothing can be resumed and one room is refused: the server fails the whole request.
    s2.push({
      type: 'error',
      id: s2.request('resume').id,
      data: { code: 'not_room_member', message: 'cannot resume room kicked: not room member' },
    });
    await tick();
    s2.push({
      type: 'error',
      id: s2.requests('resume')[1].id,
      data: { code: 'not_room_member', message: 'no' },
    });
    await tick();
    // Alone, the gone room is not an error: the server answers with `gone`.
    expect(s2.requests('resume')[2].data).toEqual({ rooms: { lost: 2 } });
    s2.push({
      type: 'ack',
      id: s2.requests('resume')[2].id,
      data: { rooms: {}, errors: { lost: 'room_not_found' }, gone: ['lost'] },
    });
    await tick();
    expect(client.state).toBe('open');
    expect(gone).toEqual([['lost']]);
    expect(client.lastSeqs).toEqual({});
  });

  it('emits rooms_gone when the whole resume fails with room_not_found (older servers)', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('x', 1) }, { type: 'message', data: msg('y', 4) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    const errors: unknown[] = [];
    const gaps: unknown[] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    client.on('error', (e) => errors.push(e));
    client.on('gap', (g) => gaps.push(g));
    s2.accept();
    await tick();
    const notFound = (id: string | undefined) => ({
      type: 'error',
      id,
      data: { code: 'room_not_found', message: 'cannot resume room x: room not found' },
    });
    s2.push(notFound(s2.request('resume').id));
    await tick();
    s2.push(notFound(s2.requests('resume')[1].id));
    await tick();
    s2.push(notFound(s2.requests('resume')[2].id));
    await tick();
    expect(s2.requests('resume').map((r) => r.data)).toEqual([
      { rooms: { x: 1, y: 4 } },
      { rooms: { x: 1 } },
      { rooms: { y: 4 } },
    ]);
    expect(client.state).toBe('open');
    expect(gone).toEqual([['x', 'y']]);
    expect(errors).toEqual([]);
    expect(gaps).toEqual([]);
    expect(client.lastSeqs).toEqual({});
  });
});
