import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { StreamingConfigError } from './streaming-config.error';
import { NESTED_GROUPS, STREAMING_OPTION_TABLE, parseOptionText, setOptionPath } from './streaming-env';
import type { StreamingOptionsInput } from './streaming-options.interface';

const BLOCK = 'extensions.streaming';
const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the `extensions.streaming` block of a YAML file (snake_case keys,
 * nested `rate_limit:` and `auth:` blocks) into camelCased options. String
 * values of number/boolean/list options are converted like env values; other
 * values pass through to validation; `null` counts as unset.
 * @throws StreamingConfigError when the file is missing or unparsable, the
 * block is missing, a key is unknown or a value cannot be converted.
 */
export function readStreamingYaml(path: string): StreamingOptionsInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StreamingConfigError(`Cannot read streaming config file ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new StreamingConfigError(`Cannot parse streaming config file ${path}: ${(e as Error).message}`);
  }
  const block = isMap(doc) && isMap(doc.extensions) ? doc.extensions.streaming : undefined;
  if (!isMap(block)) throw new StreamingConfigError(`Streaming config file ${path} has no ${BLOCK} mapping`);

  const out: Record<string, unknown> = {};
  const issues: string[] = [];
  const groups = new Set(Object.values(NESTED_GROUPS));
  const visit = (map: Record<string, unknown>, prefix: string): void => {
    for (const [key, raw] of Object.entries(map)) {
      const snake = prefix + key;
      if (!prefix && groups.has(key)) {
        if (isMap(raw)) visit(raw, `${key}.`);
        else if (raw != null) issues.push(`${BLOCK}.${snake} must be a mapping`);
        continue;
      }
      const d = STREAMING_OPTION_TABLE.find((o) => o.snake === snake);
      if (!d) {
        issues.push(`${BLOCK}.${snake} is not a known option`);
        continue;
      }
      if (raw == null) continue;
      const { value, error } = typeof raw === 'string' ? parseOptionText(d, raw) : { value: raw };
      if (error) issues.push(`${BLOCK}.${snake}=${JSON.stringify(raw)} ${error}`);
      else setOptionPath(out, d.path, value);
    }
  };
  visit(block, '');
  if (issues.length) throw new StreamingConfigError(`${path}: ${issues.join('; ')}`, issues);
  return out;
}
