import { StreamingBackend } from '../../interfaces';
import { LocalPersistence } from './local-persistence.interface';
import { LocalReadState } from './local-read-state';
import { LocalRoom } from './local-rooms';

/**
 * The in-process backend (the default): all state in this process's memory,
 * pub/sub delivered synchronously. Nothing is shared with other processes.
 * With a {@link LocalPersistence} (e.g. SQLite) rooms, members, bans and
 * history are written through and reloaded after a restart.
 *
 * One port per layer: `LocalPresence` (presence store, node directory,
 * counters) < `LocalRooms` (room store) < `LocalBroker` (pub/sub and message
 * logs) < `LocalReadState` (read state) < this class (lifecycle and loading).
 */
export class LocalBackend extends LocalReadState implements StreamingBackend {
  readonly kind = 'local';

  private closed = false;
  private loaded = false;

  constructor(persistence?: LocalPersistence) {
    super(persistence);
  }

  async connect(): Promise<void> {
    this.closed = false;
    if (this.persistence && !this.loaded) {
      this.loaded = true;
      for (const p of this.persistence.load()) {
        const room: LocalRoom = {
          record: p.record,
          members: new Map(p.members.map((m) => [m.userId, m])),
          restrictions: new Map(p.restrictions.map((r) => [this.restrictionKey(r.kind, r.userId), r])),
          invitations: new Map(p.invitations.map((i) => [i.userId, i])),
          modLog: p.modLog,
          history: p.history,
          byId: new Map(p.history.map((m) => [m.id, m])),
          lastSeq: p.lastSeq,
          reads: new Map(Object.entries(p.readSeqs ?? {})),
        };
        this.rooms.set(p.record.id, room);
        for (const userId of room.members.keys()) this.indexUser(userId, p.record.id, true);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    this.persistence?.close();
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('local backend is closed');
  }
}
