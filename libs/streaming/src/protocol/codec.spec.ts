import fc from 'fast-check';
import { ERROR_CODES } from '@nest-streaming/protocol';
import { MAX_DATA_DEPTH, decodeFrame, jsonDepth } from './codec';

const RUNS = 5000;

/** A JSON value nested exactly `depth` levels (objects and arrays alternate). */
const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { k: v } : [v];
  return v;
};

describe('decodeFrame (property-based)', () => {
  it(`never throws and answers every line with an envelope or an invalid_message error (${RUNS} runs)`, () => {
    const line = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            type: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
            id: fc.oneof(fc.string(), fc.integer(), fc.boolean()),
            data: fc.jsonValue({ maxDepth: 4 }),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '{"__proto__":{"polluted":1},"type":"x"}',
        '{"type":"x","data":{"constructor":{"prototype":{"p":1}}}}',
      ),
    );
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (lines) => {
        const decoded = decodeFrame(lines.join('\n'));
        expect(decoded.length).toBeGreaterThanOrEqual(1);
        for (const d of decoded) {
          if (d.ok) {
            expect(typeof d.envelope.type).toBe('string');
            expect(d.envelope.type.length).toBeGreaterThan(0);
            expect(typeof d.envelope.data).toBe('object');
            expect(Array.isArray(d.envelope.data)).toBe(false);
            expect(d.envelope.id === undefined || typeof d.envelope.id === 'string').toBe(true);
          } else {
            expect(ERROR_CODES).toContain(d.error.code);
            expect(d.error.code).toBe('invalid_message');
          }
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts data nested 32 levels and refuses 33, for objects and arrays alike', () => {
    // data itself is level 1: its content adds the rest.
    const ok = decodeFrame(JSON.stringify({ type: 't', data: { a: nested(MAX_DATA_DEPTH - 1) } }));
    expect(ok[0].ok).toBe(true);
    const deep = decodeFrame(JSON.stringify({ type: 't', id: 'x', data: { a: nested(MAX_DATA_DEPTH) } }));
    expect(deep[0]).toMatchObject({ ok: false, id: 'x' });
    expect(jsonDepth({ a: nested(MAX_DATA_DEPTH) })).toBe(MAX_DATA_DEPTH + 1);
  });

  it('refuses a __proto__ key anywhere in the envelope, also when written with escapes', () => {
    for (const text of [
      '{"type":"t","id":"p","__proto__":{}}',
      '{"type":"t","id":"p","data":{"__proto__":{"a":1}}}',
      '{"type":"t","id":"p","data":{"m":[{"x":{"__proto__":null}}]}}',
      '{"type":"t","id":"p","data":{"\\u005f_proto__":{}}}',
    ]) {
      const [d] = decodeFrame(text);
      expect(d).toMatchObject({ ok: false, id: 'p', error: { code: 'invalid_message' } });
    }
    const [fine] = decodeFrame('{"type":"t","data":{"content":"about __proto__","constructor":1}}');
    expect(fine.ok).toBe(true);
  });

  it('survives pathological nesting without a stack overflow', () => {
    const text = `{"type":"t","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const [d] = decodeFrame(text);
    expect(d.ok).toBe(false);
  });

  it('splits newline-delimited batches and reports each bad line separately', () => {
    const out = decodeFrame('{"type":"a","id":"1"}\nnot json\n\n{"type":"b","id":"2","data":null}');
    expect(out.map((d) => (d.ok ? d.envelope.type : d.error.code))).toEqual(['a', 'invalid_message', 'b']);
  });
});
