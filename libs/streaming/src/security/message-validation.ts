import { plainToInstance } from 'class-transformer';
import { validate, ValidationError, ValidatorOptions } from 'class-validator';
import { StreamingError } from '../protocol/streaming-error';
import type { ContentFilter, ContentFilterContext, FilteredContent } from '../interfaces';

/** Request types whose metadata is validated by default (`edit_message` carries none). */
export const METADATA_VALIDATED_TYPES: readonly string[] = Object.freeze(['send_message', 'publish']);

/** Options of {@link MetadataValidator}. */
export interface MetadataValidatorOptions {
  /** Request types to validate. Default {@link METADATA_VALIDATED_TYPES}. */
  types?: readonly string[];
  /**
   * class-validator options, e.g. `{ whitelist: true, forbidNonWhitelisted: true }`.
   * With `whitelist`, the metadata passed on is the validated object stripped of
   * undecorated properties.
   */
  validatorOptions?: ValidatorOptions;
  /** At most this many violations are listed in the error. Default 10. */
  maxListed?: number;
  /**
   * Deepest nesting of metadata (objects and arrays count; `{}` is 1); deeper
   * metadata is refused unvalidated (class-transformer recurses, and overflows the
   * stack at a few thousand levels). Default 32 ({@link METADATA_MAX_DEPTH}).
   */
  maxDepth?: number;
  /**
   * Most keys and array elements in metadata, counted over all levels; bigger
   * metadata is refused unvalidated (class-transformer's cost grows with the square
   * of an object's key count, class-validator's is high per element).
   * Default 1000 ({@link METADATA_MAX_ENTRIES}).
   */
  maxEntries?: number;
}

/** Default {@link MetadataValidatorOptions.maxDepth}. */
export const METADATA_MAX_DEPTH = 32;
/** Default {@link MetadataValidatorOptions.maxEntries}. */
export const METADATA_MAX_ENTRIES = 1000;

/**
 * Why `metadata` is too big to validate, or `undefined`. Iterative, and stops as soon
 * as a limit is passed, so it costs at most `maxEntries` steps.
 */
function tooBig(metadata: unknown, maxDepth: number, maxEntries: number): string | undefined {
  let entries = 0;
  const stack: Array<[object, number]> = [];
  if (typeof metadata === 'object' && metadata !== null) stack.push([metadata, 1]);
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
    const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
    entries += children.length;
    if (entries > maxEntries) return `more than ${maxEntries} keys and array elements`;
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push([c, depth + 1]);
  }
  return undefined;
}

/** `path: constraint, constraint` for every violation, nested ones with dotted paths. */
export function describeViolations(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = parent ? `${parent}.${e.property}` : e.property;
    const constraints = Object.values(e.constraints ?? {});
    if (constraints.length > 0) out.push(`${path}: ${constraints.join(', ')}`);
    if (e.children?.length) out.push(...describeViolations(e.children, path));
    else if (constraints.length === 0) out.push(`${path}: invalid`);
  }
  return out;
}

/**
 * Message validation: validates a message's
 * `metadata` against a class-validator DTO (nested DTOs need `@ValidateNested()` and
 * `@Type(() => Nested)`), refusing with `invalid_message` listing every violation.
 * Use it as one of the content filters. Metadata deeper or bigger than the
 * `maxDepth` and `maxEntries` options is refused (`invalid_message`) before
 * validation, which keeps the cost of a message bounded.
 */
export class MetadataValidator<T extends object> implements ContentFilter {
  private readonly types: ReadonlySet<string>;

  constructor(
    private readonly dto: new () => T,
    private readonly opts: MetadataValidatorOptions = {},
  ) {
    this.types = new Set(opts.types ?? METADATA_VALIDATED_TYPES);
  }

  async filter(
    ctx: ContentFilterContext,
    content: string,
    metadata: Record<string, unknown>,
  ): Promise<FilteredContent> {
    if (!this.types.has(ctx.type)) return { content, metadata };
    const excess = tooBig(
      metadata,
      this.opts.maxDepth ?? METADATA_MAX_DEPTH,
      this.opts.maxEntries ?? METADATA_MAX_ENTRIES,
    );
    if (excess) throw new StreamingError('invalid_message', `invalid metadata: ${excess}`);
    const instance = plainToInstance(this.dto, metadata ?? {});
    const errors = await validate(instance, {
      forbidUnknownValues: false,
      ...this.opts.validatorOptions,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) {
      const all = describeViolations(errors);
      const max = this.opts.maxListed ?? 10;
      const listed =
        all.slice(0, max).join('; ') + (all.length > max ? `; and ${all.length - max} more` : '');
      throw new StreamingError('invalid_message', `invalid metadata: ${listed}`);
    }
    if (!this.opts.validatorOptions?.whitelist) return { content, metadata };
    return { content, metadata: { ...instance } as Record<string, unknown> };
  }
}

/** A {@link MetadataValidator} for `dtoClass`. */
export function createMetadataValidator<T extends object>(
  dtoClass: new () => T,
  opts?: MetadataValidatorOptions,
): ContentFilter {
  return new MetadataValidator(dtoClass, opts);
}
