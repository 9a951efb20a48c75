/**
 * JSON Schema of a DTO class from its class-validator decorators: the rules
 * requests are validated with are the ones the documents describe.
 */
import type { JsonSchema, JsonType } from '@nest-streaming/protocol';
import { getMetadataStorage, ValidationTypes } from 'class-validator';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type Ctor = Function;
type ValidationMetadata = ReturnType<
  ReturnType<typeof getMetadataStorage>['getTargetValidationMetadatas']
>[number];

/** What one validator says of a value (`each: true` validators apply to the items of an array). */
function applyValidator(schema: JsonSchema, m: ValidationMetadata): void {
  const c = (m.constraints ?? []) as unknown[];
  const num = (i = 0): number => Number(c[i]);
  switch (m.name) {
    case 'isString':
      schema.type = 'string';
      break;
    case 'isInt':
      schema.type = 'integer';
      break;
    case 'isNumber':
      schema.type = 'number';
      break;
    case 'isBoolean':
      schema.type = 'boolean';
      break;
    case 'isObject':
      schema.type = 'object';
      break;
    case 'isArray':
      schema.type = 'array';
      break;
    case 'isNotEmpty':
      schema.minLength = Math.max(schema.minLength ?? 0, 1);
      break;
    case 'minLength':
      schema.minLength = num();
      break;
    case 'maxLength':
      schema.maxLength = num();
      break;
    case 'length':
      schema.minLength = num(0);
      if (c[1] !== undefined) schema.maxLength = num(1);
      break;
    case 'min':
      schema.minimum = num();
      break;
    case 'max':
      schema.maximum = num();
      break;
    case 'arrayMinSize':
      schema.minItems = num();
      break;
    case 'arrayMaxSize':
      schema.maxItems = num();
      break;
    case 'arrayNotEmpty':
      schema.minItems = Math.max(schema.minItems ?? 0, 1);
      break;
    case 'isIn':
      schema.enum = [...(c[0] as Array<string | number>)];
      break;
    case 'isEnum':
      schema.enum = Object.values(c[0] as Record<string, string | number>);
      break;
    case 'matches':
      schema.pattern = c[0] instanceof RegExp ? c[0].source : String(c[0]);
      break;
    case 'isUUID':
      schema.format = 'uuid';
      break;
    case 'isEmail':
      schema.format = 'email';
      break;
    case 'isUrl':
      schema.format = 'uri';
      break;
    case 'isISO8601':
    case 'isDateString':
      schema.format = 'date-time';
      break;
    default:
      // Custom validators say nothing a schema can carry.
      break;
  }
}

/** `minLength` (from `isNotEmpty`) only means something on strings. */
function tidy(schema: JsonSchema): JsonSchema {
  if (schema.minLength !== undefined && schema.type !== 'string' && schema.type !== undefined) {
    delete schema.minLength;
  }
  if (schema.enum && schema.type === undefined) {
    const kinds = new Set(schema.enum.map((v) => typeof v));
    if (kinds.size === 1) schema.type = kinds.has('number') ? 'number' : 'string';
  }
  return schema;
}

/** The class and its ancestors, base first. */
function lineage(dto: Ctor): Ctor[] {
  const out: Ctor[] = [];
  for (let c = dto; c && c !== Function.prototype; c = Object.getPrototypeOf(c) as Ctor) out.unshift(c);
  return out;
}

/**
 * The JSON Schema of `dto`'s instances: a property per validated field (the
 * base class's first), `required` unless `@IsOptional()` (or a `@ValidateIf()`
 * that skips `undefined`), `null` allowed where a `@ValidateIf()` skips it.
 */
export function dtoSchema(dto: Ctor): JsonSchema {
  const metas = getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false);
  const depth = lineage(dto);
  const byProp = new Map<string, ValidationMetadata[]>();
  for (const m of metas) {
    if (!byProp.has(m.propertyName)) byProp.set(m.propertyName, []);
    byProp.get(m.propertyName)!.push(m);
  }
  const names = [...byProp.keys()].sort(
    (a, b) =>
      Math.min(...byProp.get(a)!.map((m) => depth.indexOf(m.target as Ctor))) -
      Math.min(...byProp.get(b)!.map((m) => depth.indexOf(m.target as Ctor))),
  );
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const name of names) {
    let optional = false;
    let nullable = false;
    const schema: JsonSchema = {};
    const items: JsonSchema = {};
    // Decorators run bottom-up; read them top-down, as written.
    for (const m of [...byProp.get(name)!].reverse()) {
      if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
        if (m.name === 'isOptional') optional = true;
        else {
          const validateIf = m.constraints?.[0] as ((o: object, v: unknown) => boolean) | undefined;
          if (validateIf?.({ [name]: undefined }, undefined) === false) optional = true;
          if (validateIf?.({ [name]: null }, null) === false) nullable = true;
        }
      } else if (m.type === ValidationTypes.CUSTOM_VALIDATION) {
        applyValidator(m.each ? items : schema, m);
      }
    }
    if (Object.keys(items).length > 0) {
      schema.type ??= 'array';
      schema.items = tidy(items);
    }
    tidy(schema);
    if (nullable && typeof schema.type === 'string') schema.type = [schema.type, 'null'] as JsonType[];
    properties[name] = schema;
    if (!optional) required.push(name);
  }
  const out: JsonSchema = { type: 'object', properties };
  if (required.length > 0) out.required = required;
  return out;
}
