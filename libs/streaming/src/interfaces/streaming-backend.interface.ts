import type { Broker } from './broker.interface';
import type { NodeDirectory } from './node-directory.interface';
import type { PresenceStore } from './presence-store.interface';
import type { ReadStateStore } from './read-state-store.interface';
import type { RoomStore } from './room-store.interface';

/**
 * A whole backend (local, Redis, NATS): every port in one object, plus its
 * lifecycle. The module binds each port's token to it; a backend may also be
 * assembled from parts that implement one port each.
 */
export interface StreamingBackend extends Broker, RoomStore, PresenceStore, NodeDirectory, ReadStateStore {
  /** `local`, `redis`, `nats`, ... */
  readonly kind: string;
  /** True when other nodes may share this backend. */
  readonly distributed: boolean;

  connect(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the backend answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /**
   * Optional: why an acknowledged message could be lost if the backend's server
   * restarted (e.g. Redis without AOF), or null when its settings keep them.
   * Shown as a warning by the backend health indicator.
   */
  durabilityWarning?(): Promise<string | null>;

  /** Atomically adds `by` to a counter that expires `ttlMs` after its creation; returns the new value. */
  incrementCounter(key: string, by: number, ttlMs: number): Promise<number>;
  getCounter(key: string): Promise<number>;
}
