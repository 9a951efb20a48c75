import type { StreamingOptions } from '../config/streaming-options.interface';

/** Milliseconds history keeps a message (`message_retention`, in hours). */
export const retentionMs = (options: Pick<StreamingOptions, 'messageRetention'>): number =>
  options.messageRetention * 3_600_000;

/**
 * The oldest timestamp (ISO 8601) history still serves: messages past
 * retention are never returned, even between two scheduled trims.
 */
export const retentionCutoff = (
  options: Pick<StreamingOptions, 'messageRetention'>,
  now = Date.now(),
): string => new Date(now - retentionMs(options)).toISOString();
