import { RoomRole } from '../interfaces';

/** Everything a role may do in a room (PROTOCOL.md section 5). */
export type RoomPermission =
  | 'read'
  | 'send'
  | 'react'
  | 'type'
  | 'edit_own'
  | 'delete_own'
  | 'delete_any'
  | 'kick'
  | 'mute'
  | 'ban'
  | 'invite'
  | 'manage_room'
  | 'set_role'
  | 'delete_room';

/** Role rank, highest first in PROTOCOL.md: owner 4, admin 3, moderator 2, member 1. */
export const ROLE_RANK: Record<RoomRole, number> = { owner: 4, admin: 3, moderator: 2, member: 1 };

const MEMBER: RoomPermission[] = ['read', 'send', 'react', 'type', 'edit_own', 'delete_own'];
const MODERATOR: RoomPermission[] = [...MEMBER, 'delete_any', 'kick', 'mute'];
const ADMIN: RoomPermission[] = [...MODERATOR, 'ban', 'invite', 'manage_room', 'set_role'];
const OWNER: RoomPermission[] = [...ADMIN, 'delete_room'];

/** The permission table. */
export const ROLE_PERMISSIONS: Record<RoomRole, ReadonlySet<RoomPermission>> = {
  member: new Set(MEMBER),
  moderator: new Set(MODERATOR),
  admin: new Set(ADMIN),
  owner: new Set(OWNER),
};

export const roleHas = (role: RoomRole, permission: RoomPermission): boolean =>
  ROLE_PERMISSIONS[role].has(permission);

/** True when `actor` outranks `target` (nobody acts on an equal or higher role). */
export const outranks = (actor: RoomRole, target: RoomRole): boolean => ROLE_RANK[actor] > ROLE_RANK[target];
