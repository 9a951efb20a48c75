import { encodeEnvelope } from './envelope';
import type { WireMember, WireMessage, WirePresence, WireRoom } from '@nest-streaming/protocol';
import {
  type MemberRecord,
  type ModerationLogEntry,
  type PresenceRecord,
  type RoomRecord,
  type StoredMessage,
} from '../interfaces';

export type { WireMember, WireMessage, WirePresence, WireRoom } from '@nest-streaming/protocol';

export function messageToWire(m: StoredMessage): WireMessage {
  const w: WireMessage = {
    id: m.id,
    seq: m.seq,
    room_id: m.roomId,
    user_id: m.userId,
    content: m.content,
    metadata: m.metadata,
    timestamp: m.timestamp,
    reactions: m.reactions,
  };
  if (m.editedAt !== undefined) {
    w.edited_at = m.editedAt;
    w.edited_by = m.editedBy;
  }
  if (m.deleted) {
    w.deleted = true;
    w.deleted_by = m.deletedBy;
  }
  if (m.replyTo !== undefined) w.reply_to = m.replyTo;
  if (m.threadId !== undefined) w.thread_id = m.threadId;
  if (m.replyCount !== undefined) {
    w.reply_count = m.replyCount;
    w.last_reply_at = m.lastReplyAt;
  }
  return w;
}

export function roomToWire(r: RoomRecord, memberCount: number): WireRoom {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    private: r.private,
    owner: r.owner,
    max_members: r.maxMembers,
    member_count: memberCount,
    created_at: r.createdAt,
    kind: r.kind ?? 'room',
  };
}

export const memberToWire = (m: MemberRecord): WireMember => ({ user_id: m.userId, role: m.role });

export function presenceToWire(p: PresenceRecord): WirePresence {
  const w: WirePresence = { user_id: p.userId, status: p.status, last_seen: p.lastSeen };
  if (p.custom !== undefined) w.custom = p.custom;
  return w;
}

/** The `message` envelope of a stored message, serialized once for every recipient. */
export const encodeMessageEnvelope = (m: StoredMessage): string =>
  encodeEnvelope('message', messageToWire(m));

/** A moderation log entry as clients see it. */
export interface WireModerationEntry {
  action: ModerationLogEntry['action'];
  room_id: string;
  moderator_id: string | null;
  target_id: string;
  reason: string;
  at: string;
  duration_s?: number;
  role?: string;
}

export function moderationEntryToWire(e: ModerationLogEntry): WireModerationEntry {
  const w: WireModerationEntry = {
    action: e.action,
    room_id: e.roomId,
    moderator_id: e.moderatorId,
    target_id: e.targetId,
    reason: e.reason,
    at: e.at,
  };
  if (e.durationS !== undefined) w.duration_s = e.durationS;
  if (e.role !== undefined) w.role = e.role;
  return w;
}
