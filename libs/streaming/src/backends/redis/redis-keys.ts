import { roomTopic, userTopic } from '../../interfaces';
/**
 * Every Redis key and channel name the Redis backend uses, in one place.
 *
 * Keys are hash-tagged so that Redis Cluster keeps each group on one slot and
 * every Lua script / MULTI touches keys of one hash tag only:
 *
 * | group | hash tag | keys |
 * | --- | --- | --- |
 * | one room | `{r:<roomId>}` | `room` (hash field -> JSON value), `members` (hash userId -> `<role>\x1f<json>`), `restrictions` (hash `<kind>:<userId>` -> `<untilMs>\x1f<json>`), `invitations` (hash userId -> JSON), `modlog` (list of JSON), `seq` (counter), `hist` (stream `<seq>-0` -> {id, ts}), `msgs` (hash messageId -> message record), `reads` (hash userId -> highest seq read), `outbox` (list of `<seq>\x1f<envelope>` stored but not yet published: durable appends waiting for their replicas, see redis-broker.ts) |
 * | one user | `{u:<userId>}` | `rooms` (zset roomId -> reservation time), `presence` (string JSON with PX), `nodes` (set of node ids with connections of the user), `conns` (hash nodeId -> open connections) |
 * | one node | `{n:<nodeId>}` | `users` (set of user ids with connections on the node) |
 * | the room index | `{rooms}` | `index` (set of room ids) |
 * | one counter | `{c:<key>}` | the counter (string with PX) |
 * | one expiring set | `{x:<key>}` | hash member -> expiry ms (Redis clock), PEXPIREAT past the newest |
 * | the node registry | `{nodes}` | `info` (hash nodeId -> JSON), `expiry` (zset nodeId -> expiry ms, Redis clock) |
 *
 * Pub/sub channels, two layouts (the backend uses one, chosen at connect):
 * - classic PUBLISH / SUBSCRIBE: `<prefix><topic>`. These are not keys: a
 *   classic PUBLISH reaches every node of a cluster. In a cluster, a topic is
 *   published through a script routed by {@link RedisKeys.publishRoute}, so
 *   that all publishes on a topic leave from one node and arrive in order; a
 *   room topic routes to the room's own slot, where appendMessage publishes
 *   its messages.
 * - sharded SPUBLISH / SSUBSCRIBE (Redis 7, {@link RedisKeys.shardChannel}),
 *   for the topics about one thing: the channel carries the hash tag of what
 *   it is about, `<prefix>{r:<roomId>}:topic` and `<prefix>{u:<userId>}:topic`
 *   (the room's and the user's slot), `<prefix>{t:chan:<name>}` for the channel
 *   bus. A message travels only within the shard owning that slot, and
 *   appendMessage's SPUBLISH stays in the slot of the room's keys, as a script
 *   in a cluster must. Node-wide topics (`nodes`, `rooms:public`) stay classic.
 */

export interface RoomKeys {
  room: string;
  members: string;
  restrictions: string;
  invitations: string;
  modlog: string;
  seq: string;
  hist: string;
  msgs: string;
  reads: string;
  outbox: string;
}

const ROOM_TOPIC_PREFIX = roomTopic('');
const USER_TOPIC_PREFIX = userTopic('');
/** The channel bus's topics (channels/channel-bus.ts; not imported: backends sit below the features). */
const CHANNEL_TOPIC_PREFIX = 'chan:';

export class RedisKeys {
  constructor(readonly prefix: string) {}

  room(roomId: string): RoomKeys {
    const base = `${this.prefix}{r:${roomId}}:`;
    return {
      room: `${base}room`,
      members: `${base}members`,
      restrictions: `${base}restrictions`,
      invitations: `${base}invitations`,
      modlog: `${base}modlog`,
      seq: `${base}seq`,
      hist: `${base}hist`,
      msgs: `${base}msgs`,
      reads: `${base}reads`,
      outbox: `${base}outbox`,
    };
  }

  /** Every key of a room, in the order the create/delete scripts expect. */
  roomKeyList(roomId: string): string[] {
    const k = this.room(roomId);
    return [
      k.room,
      k.members,
      k.restrictions,
      k.invitations,
      k.modlog,
      k.seq,
      k.hist,
      k.msgs,
      k.reads,
      k.outbox,
    ];
  }

  userRooms(userId: string): string {
    return `${this.prefix}{u:${userId}}:rooms`;
  }

  presence(userId: string): string {
    return `${this.prefix}{u:${userId}}:presence`;
  }

  userNodes(userId: string): string {
    return `${this.prefix}{u:${userId}}:nodes`;
  }

  userConnections(userId: string): string {
    return `${this.prefix}{u:${userId}}:conns`;
  }

  nodeUsers(nodeId: string): string {
    return `${this.prefix}{n:${nodeId}}:users`;
  }

  roomIndex(): string {
    return `${this.prefix}{rooms}:index`;
  }

  counter(key: string): string {
    return `${this.prefix}{c:${key}}`;
  }

  expiringSet(key: string): string {
    return `${this.prefix}{x:${key}}`;
  }

  nodeInfo(): string {
    return `${this.prefix}{nodes}:info`;
  }

  nodeExpiry(): string {
    return `${this.prefix}{nodes}:expiry`;
  }

  /** A key (never written) that routes publishes on `topic` to one cluster node. */
  publishRoute(topic: string): string {
    if (topic.startsWith(ROOM_TOPIC_PREFIX)) return this.room(topic.slice(ROOM_TOPIC_PREFIX.length)).seq;
    if (topic.startsWith(USER_TOPIC_PREFIX))
      return `${this.prefix}{u:${topic.slice(USER_TOPIC_PREFIX.length)}}:route`;
    return `${this.prefix}{t:${topic}}:route`;
  }

  /** The classic pub/sub channel of a topic. */
  channel(topic: string): string {
    return `${this.prefix}${topic}`;
  }

  /**
   * The sharded pub/sub channel of a topic about one thing: a room's (in the
   * room's slot), a user's (in the user's slot), a channel bus topic (its own
   * slot). Null for the other topics (node-wide ones such as `nodes` and
   * `rooms:public`, or any other name), which stay on classic pub/sub.
   */
  shardChannel(topic: string): string | null {
    if (topic.startsWith(ROOM_TOPIC_PREFIX))
      return `${this.prefix}{r:${topic.slice(ROOM_TOPIC_PREFIX.length)}}:topic`;
    if (topic.startsWith(USER_TOPIC_PREFIX))
      return `${this.prefix}{u:${topic.slice(USER_TOPIC_PREFIX.length)}}:topic`;
    if (topic.startsWith(CHANNEL_TOPIC_PREFIX)) return `${this.prefix}{t:${topic}}`;
    return null;
  }

  /** The topic of a channel name, or null when the channel is not one of ours. */
  topicOf(channel: string): string | null {
    return channel.startsWith(this.prefix) ? channel.slice(this.prefix.length) : null;
  }
}
