/**
 * A very small schema builder: each builder returns a plain JSON Schema
 * object (what AsyncAPI and OpenAPI documents embed as is) that also carries,
 * at the type level only, the TypeScript type it describes. The wire types of
 * the server events are derived from these schemas ({@link Infer}), so an
 * event's TypeScript type and its documented schema are one definition.
 */

declare const TYPE: unique symbol;

/** Marks an object property built with {@link s.optional} (never serialized: JSON skips symbol keys). */
const OPTIONAL: unique symbol = /* @__PURE__ */ Symbol('optional');

/** The JSON Schema vocabulary of the protocol's schemas (and of the documents generated from them). */
export interface JsonSchema {
  $ref?: string;
  type?: JsonType | JsonType[];
  title?: string;
  description?: string;
  format?: string;
  const?: string | number | boolean | null;
  enum?: ReadonlyArray<string | number | boolean | null>;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchema[];
}

export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/** A JSON Schema describing values of type `T` (`T` exists for the compiler only). */
export interface Schema<T> extends JsonSchema {
  readonly [TYPE]?: T;
}

/** A property schema that may be left out of its object. */
export interface OptionalSchema<T> extends Schema<T> {
  readonly [OPTIONAL]: true;
}

/** The TypeScript type a schema describes. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type Props = Record<string, Schema<unknown>>;

/** The object type of a property table: {@link s.optional} properties become `?:` ones. */
export type InferObject<P extends Props> = Simplify<
  { -readonly [K in keyof P as P[K] extends OptionalSchema<unknown> ? never : K]: Infer<P[K]> } & {
    -readonly [K in keyof P as P[K] extends OptionalSchema<unknown> ? K : never]?: Infer<P[K]>;
  }
>;

interface Doc {
  description?: string;
}

const withDoc = <S extends JsonSchema>(schema: S, doc: Doc | undefined): S =>
  doc?.description === undefined ? schema : { ...schema, description: doc.description };

/** The builders. */
export const s = {
  string: (doc?: Doc & { format?: string }): Schema<string> =>
    withDoc(doc?.format ? { type: 'string', format: doc.format } : { type: 'string' }, doc),
  /** An ISO 8601 UTC timestamp string. */
  timestamp: (doc?: Doc): Schema<string> => withDoc({ type: 'string', format: 'date-time' }, doc),
  integer: (doc?: Doc & { minimum?: number }): Schema<number> =>
    withDoc(
      doc?.minimum === undefined ? { type: 'integer' } : { type: 'integer', minimum: doc.minimum },
      doc,
    ),
  number: (doc?: Doc): Schema<number> => withDoc({ type: 'number' }, doc),
  boolean: (doc?: Doc): Schema<boolean> => withDoc({ type: 'boolean' }, doc),
  /** Any JSON value. */
  unknown: (doc?: Doc): Schema<unknown> => withDoc({}, doc),
  /** One of the given strings. */
  enum: <const V extends readonly string[]>(values: V, doc?: Doc): Schema<V[number]> =>
    withDoc({ type: 'string', enum: [...values] }, doc),
  /** `T` or `null`. */
  nullable: <T>(schema: Schema<T>, doc?: Doc): Schema<T | null> => {
    const { description, ...rest } = schema;
    const out: JsonSchema =
      typeof rest.type === 'string' && rest.enum === undefined
        ? { ...rest, type: [rest.type, 'null'] }
        : { anyOf: [rest, { type: 'null' }] };
    return withDoc(out, { description: doc?.description ?? description });
  },
  array: <T>(items: Schema<T>, doc?: Doc): Schema<T[]> => withDoc({ type: 'array', items }, doc),
  /** An object whose keys are free and whose values are `T`. */
  record: <T>(values: Schema<T>, doc?: Doc): Schema<Record<string, T>> =>
    withDoc({ type: 'object', additionalProperties: Object.keys(values).length === 0 ? true : values }, doc),
  /** A property that may be left out (only inside {@link s.object}). */
  optional: <T>(schema: Schema<T>): OptionalSchema<T> => ({ ...schema, [OPTIONAL]: true }),
  /** An object with these properties (the others are allowed too; {@link s.open} says so in the type). */
  object: <P extends Props>(properties: P, doc?: Doc): Schema<InferObject<P>> => {
    const props: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const [key, value] of Object.entries(properties)) {
      const { [OPTIONAL]: optional, ...schema } = value as OptionalSchema<unknown>;
      props[key] = schema;
      if (!optional) required.push(key);
    }
    return withDoc({ type: 'object', properties: props, required }, doc);
  },
  /** {@link s.object} whose type also admits any other key (`[key: string]: unknown`). */
  open: <P extends Props>(properties: P, doc?: Doc): Schema<InferObject<P> & { [key: string]: unknown }> => ({
    ...s.object(properties, doc),
    additionalProperties: true,
  }),
};
