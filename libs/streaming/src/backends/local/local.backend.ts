import { StreamingBackend } from '../../interfaces';
import { LocalPersistence } from './local-persistence.interface';
import { LocalReadState } from './local-read-state';
import type { LocalBackendOptions } from './local-rooms';

export type { LocalBackendOptions } from './local-rooms';

/**
 * The in-process backend (the default): pub/sub delivered synchronously,
 * nothing shared with other processes.
 *
 * Without a {@link LocalPersistence} every room, member and message lives in
 * this process's memory until it exits: for tests and demos. With one (the
 * SQLite history store) the store is the source of truth: start-up reads
 * nothing from it, every change is written there before the call resolves,
 * and memory holds a bounded cache (`cacheEntries`) of the recently used
 * rooms, their members, restrictions and newest messages.
 *
 * One port per layer: `LocalPresence` (presence store, node directory,
 * counters) < `LocalRooms` (room store) < `LocalBroker` (pub/sub and message
 * logs) < `LocalReadState` (read state) < this class (lifecycle).
 */
export class LocalBackend extends LocalReadState implements StreamingBackend {
  readonly kind = 'local';

  private closed = false;

  constructor(persistence?: LocalPersistence, options: LocalBackendOptions = {}) {
    super(persistence, options);
  }

  async connect(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    if (this.persistence) this.rooms.clear();
    this.persistence?.close();
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('local backend is closed');
  }
}
