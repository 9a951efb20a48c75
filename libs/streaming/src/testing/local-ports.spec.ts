/**
 * The per-port suites on their own, against the local backend: what a store
 * implementing a single port runs. The room store is given as the bare
 * RoomStore methods (no history), as a store of rooms alone would be: its
 * deleteRoom tests then leave the history checks out.
 */
import { LocalBackend } from '../backends/local/local.backend';
import type { RoomStore } from '../interfaces';
import { describeBrokerContract, describePresenceStoreContract, describeRoomStoreContract } from './index';

const ROOM_STORE_METHODS = [
  'createRoom',
  'getRoom',
  'updateRoom',
  'deleteRoom',
  'listRooms',
  'countRooms',
  'addMember',
  'removeMember',
  'getMember',
  'setMemberRole',
  'listMembers',
  'countMembers',
  'userRooms',
  'setRestriction',
  'getRestriction',
  'clearRestriction',
  'listRestrictions',
  'addInvitation',
  'getInvitation',
  'removeInvitation',
  'appendModerationLog',
  'getModerationLog',
] as const satisfies readonly (keyof RoomStore)[];

/** Only the RoomStore methods of a local backend (bound to it), plus its lifecycle. */
function roomStoreOnly(): RoomStore & { connect(): Promise<void>; close(): Promise<void> } {
  const backend = new LocalBackend();
  const store: Record<string, unknown> = {
    connect: () => backend.connect(),
    close: () => backend.close(),
  };
  for (const m of ROOM_STORE_METHODS) store[m] = backend[m].bind(backend);
  return store as unknown as RoomStore & { connect(): Promise<void>; close(): Promise<void> };
}

describeBrokerContract('local', () => new LocalBackend());
describeRoomStoreContract('local, rooms only', roomStoreOnly);
describePresenceStoreContract('local', () => new LocalBackend());
