import { trace, type Span, type Tracer } from '@opentelemetry/api';
import { LocalBackend } from '../backends/local/local.backend';
import { inSpan, tracedBackend } from './tracing';

/** A tracer that records the spans it ends (the app's provider would export them). */
const ended: Array<{ name: string; error: boolean; attributes: Record<string, unknown> }> = [];

function recordingSpan(name: string, attributes: Record<string, unknown> = {}): Span {
  let error = false;
  const span = {
    setStatus: (s: { code: number }) => {
      error = s.code === 2;
      return span;
    },
    recordException: () => undefined,
    end: () => void ended.push({ name, error, attributes }),
    spanContext: () => ({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 1 }),
    isRecording: () => true,
    setAttribute: () => span,
    setAttributes: () => span,
    addEvent: () => span,
    addLink: () => span,
    addLinks: () => span,
    updateName: () => span,
  };
  return span;
}

const tracer = {
  startSpan: (name: string, opts?: { attributes?: Record<string, unknown> }) =>
    recordingSpan(name, opts?.attributes),
  startActiveSpan: (name: string, opts: { attributes?: Record<string, unknown> }, fn: (s: Span) => unknown) =>
    fn(recordingSpan(name, opts.attributes)),
} as unknown as Tracer;

beforeAll(() => {
  trace.setGlobalTracerProvider({ getTracer: () => tracer });
});
afterAll(() => trace.disable());
beforeEach(() => (ended.length = 0));

describe('tracing (with @opentelemetry/api installed)', () => {
  it('inSpan records a span per call, marking failures', async () => {
    await expect(inSpan('streaming.request.ping', { 'streaming.user_id': 'u' }, async () => 7)).resolves.toBe(
      7,
    );
    await expect(
      inSpan('streaming.request.send_message', {}, async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(ended).toEqual([
      { name: 'streaming.request.ping', error: false, attributes: { 'streaming.user_id': 'u' } },
      { name: 'streaming.request.send_message', error: true, attributes: {} },
    ]);
  });

  it('tracedBackend wraps every async backend call in a span and keeps results, errors and properties', async () => {
    const backend = tracedBackend(new LocalBackend(), 'local');
    expect(backend.kind).toBe('local');
    expect(backend).toBeInstanceOf(LocalBackend);
    const room = {
      id: 'r1',
      name: 'r',
      description: '',
      private: false,
      ownerId: 'o',
      maxMembers: null,
      createdAt: new Date().toISOString(),
      metadata: {},
    };
    await backend.createRoom(room as never, { userId: 'o', role: 'owner', joinedAt: room.createdAt });
    await expect(
      backend.createRoom(room as never, { userId: 'o', role: 'owner', joinedAt: '' }),
    ).rejects.toThrow('already exists');
    expect((await backend.getRoom('r1'))?.name).toBe('r');
    expect(ended.map((s) => [s.name, s.error])).toEqual([
      ['streaming.backend.createRoom', false],
      ['streaming.backend.createRoom', true],
      ['streaming.backend.getRoom', false],
    ]);
    expect(ended[0].attributes).toEqual({ 'streaming.backend': 'local' });
  });
});

describe('tracing without a registered tracer provider', () => {
  it('wraps nothing: the backend is returned as is and inSpan just runs', async () => {
    trace.disable();
    try {
      const backend = new LocalBackend();
      expect(tracedBackend(backend, 'local')).toBe(backend);
      await expect(inSpan('streaming.request.ping', {}, async () => 1)).resolves.toBe(1);
      expect(ended).toEqual([]);
    } finally {
      trace.setGlobalTracerProvider({ getTracer: () => tracer });
    }
  });
});
