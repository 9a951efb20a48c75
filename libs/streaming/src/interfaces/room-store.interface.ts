import type {
  AddMemberResult,
  Invitation,
  MemberRecord,
  ModerationLogEntry,
  Restriction,
  RoomRecord,
} from './backend-records';

/**
 * The room store port: rooms, memberships, bans and mutes, invitations and
 * the moderation log. (A room's messages belong to the {@link Broker}.)
 */
export interface RoomStore {
  /** Stores the room and makes `owner` its first member. Rejects if the id exists. */
  createRoom(room: RoomRecord, owner: MemberRecord): Promise<void>;
  getRoom(roomId: string): Promise<RoomRecord | null>;
  updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null>;
  /** Deletes the room, its members, restrictions and history. */
  deleteRoom(roomId: string): Promise<boolean>;
  listRooms(): Promise<RoomRecord[]>;
  countRooms(): Promise<number>;
  /** Atomic: checks the room's `maxMembers` and the user's room count (`maxRoomsPerUser`). */
  addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult>;
  removeMember(roomId: string, userId: string): Promise<boolean>;
  getMember(roomId: string, userId: string): Promise<MemberRecord | null>;
  setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean>;
  listMembers(roomId: string): Promise<MemberRecord[]>;
  countMembers(roomId: string): Promise<number>;
  /** Ids of the rooms a user is a member of. */
  userRooms(userId: string): Promise<string[]>;

  setRestriction(roomId: string, restriction: Restriction): Promise<void>;
  /** The live restriction, or null (expired ones count as none). */
  getRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<Restriction | null>;
  clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean>;
  listRestrictions(roomId: string): Promise<Restriction[]>;

  addInvitation(roomId: string, invitation: Invitation): Promise<void>;
  getInvitation(roomId: string, userId: string): Promise<Invitation | null>;
  removeInvitation(roomId: string, userId: string): Promise<boolean>;

  /** Appends to the room's log (newest last), keeping at most `maxEntries`. */
  appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void>;
  /** The newest `limit` entries, oldest first. */
  getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]>;
}
