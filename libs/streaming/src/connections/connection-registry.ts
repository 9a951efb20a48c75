import { Injectable } from '@nestjs/common';
import { Connection } from './connection';

/**
 * This node's live connections, indexed by id, by user and by room, so that
 * nothing per message scans all connections.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byRoom = new Map<string, Set<Connection>>();
  private readonly byTransport = { ws: 0, sse: 0 };
  private anonymous = 0;

  /** Live connections of anonymous users (auth.requireAuth off). */
  get anonymousCount(): number {
    return this.anonymous;
  }

  get size(): number {
    return this.byId.size;
  }

  get usersOnline(): number {
    return this.byUser.size;
  }

  transportCounts(): { ws: number; sse: number } {
    return { ...this.byTransport };
  }

  /** Adds a connection; returns true when it is the user's first on this node. */
  add(conn: Connection): boolean {
    this.byId.set(conn.id, conn);
    this.byTransport[conn.transport.kind]++;
    if (conn.identity.anonymous) this.anonymous++;
    let set = this.byUser.get(conn.userId);
    const first = !set;
    if (!set) this.byUser.set(conn.userId, (set = new Set()));
    set.add(conn);
    return first;
  }

  /** Removes a connection from every index; returns true when it was the user's last on this node. */
  remove(conn: Connection): { removed: boolean; lastOfUser: boolean; emptiedRooms: string[] } {
    if (!this.byId.delete(conn.id)) return { removed: false, lastOfUser: false, emptiedRooms: [] };
    this.byTransport[conn.transport.kind]--;
    if (conn.identity.anonymous) this.anonymous--;
    const emptiedRooms: string[] = [];
    for (const roomId of conn.rooms) if (this.unindexRoom(roomId, conn)) emptiedRooms.push(roomId);
    const set = this.byUser.get(conn.userId);
    set?.delete(conn);
    const lastOfUser = !!set && set.size === 0;
    if (lastOfUser) this.byUser.delete(conn.userId);
    return { removed: true, lastOfUser, emptiedRooms };
  }

  get(id: string): Connection | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Connection> {
    return this.byId.values();
  }

  userConnections(userId: string): ReadonlySet<Connection> {
    return this.byUser.get(userId) ?? EMPTY;
  }

  hasUser(userId: string): boolean {
    return this.byUser.has(userId);
  }

  roomConnections(roomId: string): ReadonlySet<Connection> {
    return this.byRoom.get(roomId) ?? EMPTY;
  }

  hasRoom(roomId: string): boolean {
    return this.byRoom.has(roomId);
  }

  /** Index a connection under a room; returns true when the room had no local connection before. */
  addToRoom(conn: Connection, roomId: string): boolean {
    if (conn.closed || !this.byId.has(conn.id)) return false;
    conn.rooms.add(roomId);
    let set = this.byRoom.get(roomId);
    const first = !set;
    if (!set) this.byRoom.set(roomId, (set = new Set()));
    set.add(conn);
    return first;
  }

  /** Unindex a connection from a room; returns true when the room has no local connection left. */
  removeFromRoom(conn: Connection, roomId: string): boolean {
    conn.rooms.delete(roomId);
    return this.unindexRoom(roomId, conn);
  }

  private unindexRoom(roomId: string, conn: Connection): boolean {
    const set = this.byRoom.get(roomId);
    if (!set || !set.delete(conn)) return false;
    if (set.size === 0) {
      this.byRoom.delete(roomId);
      return true;
    }
    return false;
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();
