/**
 * Subscription filters (PROTOCOL.md section 4): `{field: value}` matches a
 * channel message when `data[field]` (or `metadata[field]`) equals `value`;
 * an array value means "any of"; every field must match.
 *
 * Semantics, precisely:
 * - Lookup: `data`'s own property `field` when `data` has one, otherwise
 *   `metadata`'s own property `field`, otherwise the field is missing and the
 *   filter does not match. Only own properties count: `__proto__`,
 *   `constructor` or `toString` as filter keys never see inherited members.
 * - Equality: strict equality of JSON scalars (string, number, boolean,
 *   null). `null` matches a field that is present and null, never a missing
 *   one. There is no deep equality: a field whose value is an object or an
 *   array never matches (an array value in the filter means "any of", not
 *   "the field is this array").
 * - An empty filter object matches everything.
 */

/** A value a filter compares with. */
export type FilterScalar = string | number | boolean | null;

/** Subscription filters: field -> value, or field -> any of these values. */
export type ChannelFilters = Record<string, FilterScalar | FilterScalar[]>;

/** A compiled filter set: true when a message's data/metadata pass every field. */
export type ChannelFilterPredicate = (data: unknown, metadata: unknown) => boolean;

/** Most fields in one filter set. */
export const MAX_FILTER_FIELDS = 32;
/** Most values in one "any of" array. */
export const MAX_FILTER_VALUES = 100;
/** Longest filter field name. */
export const MAX_FILTER_FIELD_LENGTH = 128;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isScalar = (v: unknown): v is FilterScalar =>
  v === null ||
  typeof v === 'string' ||
  typeof v === 'boolean' ||
  (typeof v === 'number' && Number.isFinite(v));

/** Why `filters` is not a valid filter set, or null when it is (undefined means "no filters" and is valid). */
export function validateFilters(filters: unknown): string | null {
  if (filters === undefined) return null;
  if (!isRecord(filters)) return 'filters must be an object of field -> value';
  const fields = Object.keys(filters);
  if (fields.length > MAX_FILTER_FIELDS) return `filters may have at most ${MAX_FILTER_FIELDS} fields`;
  for (const field of fields) {
    if (field.length === 0 || field.length > MAX_FILTER_FIELD_LENGTH) {
      return `filter field names must be 1 to ${MAX_FILTER_FIELD_LENGTH} characters`;
    }
    const value = filters[field];
    if (Array.isArray(value)) {
      if (value.length === 0) return `filter "${field}" lists no values`;
      if (value.length > MAX_FILTER_VALUES)
        return `filter "${field}" lists more than ${MAX_FILTER_VALUES} values`;
      if (!value.every(isScalar)) return `filter "${field}" may only list strings, numbers, booleans or null`;
    } else if (!isScalar(value)) {
      return `filter "${field}" must be a string, number, boolean, null or an array of them`;
    }
  }
  return null;
}

/** The own property `field` of `data`, else of `metadata`; `MISSING` when neither has it. */
const MISSING = Symbol('missing');
function lookup(field: string, data: unknown, metadata: unknown): unknown {
  if (isRecord(data) && Object.hasOwn(data, field)) return data[field];
  if (isRecord(metadata) && Object.hasOwn(metadata, field)) return metadata[field];
  return MISSING;
}

const matchAll: ChannelFilterPredicate = () => true;

/**
 * Compile a filter set once (at subscribe time) into a predicate evaluated per
 * message: "any of" arrays become Sets. Returns a match-everything predicate
 * for undefined or empty filters. Expects filters that passed {@link validateFilters};
 * an object value in an unvalidated set simply never matches.
 */
export function compileFilters(filters: ChannelFilters | undefined): ChannelFilterPredicate {
  if (filters === undefined) return matchAll;
  const checks: Array<{ field: string; one?: unknown; anyOf?: ReadonlySet<unknown> }> = [];
  for (const field of Object.keys(filters)) {
    const value: unknown = filters[field];
    if (Array.isArray(value)) checks.push({ field, anyOf: new Set(value.filter(isScalar)) });
    else checks.push({ field, one: isScalar(value) ? value : MISSING });
  }
  if (checks.length === 0) return matchAll;
  return (data, metadata) => {
    for (const c of checks) {
      const v = lookup(c.field, data, metadata);
      if (!isScalar(v)) return false; // missing, object or array
      if (c.anyOf ? !c.anyOf.has(v) : v !== c.one) return false;
    }
    return true;
  };
}

/** One-off check of a message against a filter set (see the module comment for the exact rules). */
export function matchesFilters(
  filters: ChannelFilters | undefined,
  data: unknown,
  metadata?: unknown,
): boolean {
  return compileFilters(filters)(data, metadata);
}
