export { NatsBackend } from './nats.backend';
export type { NatsBackendOptions, NatsStreamingOptions } from './nats.backend';
export { parseNatsUrl, redactNatsUrl } from './nats-connection';
export type { ParsedNatsUrl } from './nats-connection';
