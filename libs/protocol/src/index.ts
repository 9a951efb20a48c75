/**
 * `@nest-streaming/protocol`: the wire contract of nest-streaming, shared by
 * the server and the client. Envelope and event types, the schema of each
 * server event, and the error codes with their HTTP statuses.
 */
export * from './wire';
export * from './error-codes';
export * from './events';
export * from './schema';
export * from './codecs';
