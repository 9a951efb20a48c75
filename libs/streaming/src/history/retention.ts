import { createHash } from 'node:crypto';
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

/**
 * Which rooms this node trims: the live nodes share them by a hash of the
 * room id, so a cluster walks each room once per pass instead of once per
 * node. A node missing from the list (not registered yet) trims every room;
 * a room skipped or trimmed twice while the list changes costs nothing.
 */
export function trimShare(nodeIds: readonly string[], self: string): (roomId: string) => boolean {
  if (nodeIds.length <= 1 || !nodeIds.includes(self)) return () => true;
  const nodes = [...new Set(nodeIds)].sort();
  return (roomId) =>
    nodes[createHash('sha1').update(roomId).digest().readUInt32BE(0) % nodes.length] === self;
}
