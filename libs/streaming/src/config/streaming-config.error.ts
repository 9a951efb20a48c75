/**
 * Thrown when streaming configuration (environment, YAML file or module
 * options) cannot be read or is invalid. The message names every offending
 * key; `issues` holds the same findings one per entry.
 */
export class StreamingConfigError extends Error {
  override readonly name = 'StreamingConfigError';

  constructor(
    message: string,
    /** One line per problem found. */
    readonly issues: readonly string[] = [message],
  ) {
    super(message);
  }
}
