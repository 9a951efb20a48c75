import { MAX_FILTER_FIELDS, compileFilters, matchesFilters, validateFilters } from './channel-filters';

describe('matchesFilters', () => {
  const data = { priority: 'high', count: 3, urgent: true, gone: null, nested: { a: 1 }, tags: ['x'] };

  it('matches everything without filters', () => {
    expect(matchesFilters(undefined, data)).toBe(true);
    expect(matchesFilters({}, data)).toBe(true);
  });

  it('matches equal scalars of every JSON kind', () => {
    expect(matchesFilters({ priority: 'high' }, data)).toBe(true);
    expect(matchesFilters({ count: 3 }, data)).toBe(true);
    expect(matchesFilters({ urgent: true }, data)).toBe(true);
    expect(matchesFilters({ gone: null }, data)).toBe(true);
  });

  it('uses strict equality', () => {
    expect(matchesFilters({ priority: 'low' }, data)).toBe(false);
    expect(matchesFilters({ count: '3' }, data)).toBe(false);
    expect(matchesFilters({ urgent: 'true' }, data)).toBe(false);
    expect(matchesFilters({ urgent: 1 }, data)).toBe(false);
  });

  it('treats an array as "any of"', () => {
    expect(matchesFilters({ priority: ['high', 'medium'] }, data)).toBe(true);
    expect(matchesFilters({ priority: ['low', 'medium'] }, data)).toBe(false);
    expect(matchesFilters({ count: [1, 2, 3] }, data)).toBe(true);
    expect(matchesFilters({ gone: ['x', null] }, data)).toBe(true);
  });

  it('requires every field to match', () => {
    expect(matchesFilters({ priority: 'high', count: 3 }, data)).toBe(true);
    expect(matchesFilters({ priority: 'high', count: 4 }, data)).toBe(false);
    expect(matchesFilters({ priority: ['high'], urgent: false }, data)).toBe(false);
  });

  it('does not match missing fields, not even with null', () => {
    expect(matchesFilters({ absent: 'x' }, data)).toBe(false);
    expect(matchesFilters({ absent: null }, data)).toBe(false);
    expect(matchesFilters({ absent: ['x', null] }, data)).toBe(false);
    expect(matchesFilters({ priority: 'high' }, undefined)).toBe(false);
  });

  it('falls back to metadata when data lacks the field', () => {
    expect(matchesFilters({ region: 'eu' }, data, { region: 'eu' })).toBe(true);
    expect(matchesFilters({ region: ['us', 'eu'] }, {}, { region: 'eu' })).toBe(true);
    expect(matchesFilters({ region: 'eu', priority: 'high' }, data, { region: 'eu' })).toBe(true);
    expect(matchesFilters({ region: 'eu' }, data, { region: 'us' })).toBe(false);
  });

  it('prefers data over metadata for the same field', () => {
    expect(matchesFilters({ priority: 'low' }, data, { priority: 'low' })).toBe(false);
    expect(matchesFilters({ priority: 'high' }, data, { priority: 'low' })).toBe(true);
  });

  it('never matches objects or arrays in the message (scalars only, no deep equality)', () => {
    expect(matchesFilters({ nested: { a: 1 } } as never, data)).toBe(false);
    expect(matchesFilters({ tags: ['x'] }, data)).toBe(false);
    expect(matchesFilters({ tags: 'x' }, data)).toBe(false);
  });

  it('looks at own properties only', () => {
    const plain = { a: 1 };
    expect(matchesFilters({ toString: 'x' }, plain)).toBe(false);
    expect(matchesFilters({ constructor: 'Object' }, plain)).toBe(false);
    expect(matchesFilters({ hasOwnProperty: 'x' }, plain, {})).toBe(false);
    // Parsed JSON: "__proto__" as a filter key is an own key; data without it does not match.
    const filters = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    expect(Object.keys(filters)).toEqual(['__proto__']);
    expect(matchesFilters(filters, plain)).toBe(false);
    expect(matchesFilters(filters, JSON.parse('{"__proto__": "x"}'))).toBe(true);
    expect(matchesFilters(filters, JSON.parse('{"__proto__": "y"}'))).toBe(false);
    // Inherited members of a prototype never count.
    const inherited = Object.create({ level: 'high' }) as Record<string, unknown>;
    expect(matchesFilters({ level: 'high' }, inherited)).toBe(false);
  });

  it('ignores non-object data and metadata', () => {
    expect(matchesFilters({ length: 1 }, ['a'])).toBe(false);
    expect(matchesFilters({ a: 1 }, 'a', 42)).toBe(false);
  });

  it('compiles once and evaluates many times', () => {
    const f = compileFilters({ priority: ['high', 'medium'], kind: 'alert' });
    expect(f({ priority: 'medium', kind: 'alert' }, {})).toBe(true);
    expect(f({ priority: 'medium' }, { kind: 'alert' })).toBe(true);
    expect(f({ priority: 'low', kind: 'alert' }, {})).toBe(false);
  });
});

describe('validateFilters', () => {
  it('accepts undefined, empty and scalar filters', () => {
    expect(validateFilters(undefined)).toBeNull();
    expect(validateFilters({})).toBeNull();
    expect(validateFilters({ a: 'x', b: 1, c: false, d: null, e: ['x', 2, true, null] })).toBeNull();
  });

  it.each([
    [null, 'object'],
    [[], 'object'],
    ['x', 'object'],
    [{ a: {} }, 'must be a string'],
    [{ a: [] }, 'lists no values'],
    [{ a: [{}] }, 'may only list'],
    [{ a: [['x']] }, 'may only list'],
    [{ a: new Array(101).fill('x') }, 'more than'],
    [{ '': 'x' }, 'field names'],
    [{ a: Number.NaN }, 'must be a string'],
    [Object.fromEntries(Array.from({ length: MAX_FILTER_FIELDS + 1 }, (_, i) => [`f${i}`, i])), 'at most'],
  ])('refuses %j', (filters, reason) => {
    expect(validateFilters(filters)).toContain(reason);
  });
});
