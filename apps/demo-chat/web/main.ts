/**
 * The demo chat page: plain DOM on the project's client library
 * (@nest-streaming/client), bundled by esbuild into public/app.js. No
 * framework: user data only ever reaches the page through textContent,
 * attribute setters and `<a href>` for http(s) URLs (never innerHTML).
 */
import { StreamingClient, StreamingClientError } from '@nest-streaming/client';
import type { WireMessage, WireMember, WirePresence, WireRoom } from '@nest-streaming/client';
import {
  continuesGroup,
  dayKey,
  dayLabel,
  fullTimeLabel,
  hueFor,
  initials,
  linkSegments,
  timeLabel,
} from './format';

type Role = WireMember['role'];
const RANK: Record<Role, number> = { owner: 4, admin: 3, moderator: 2, member: 1 };
const REACTIONS = ['👍', '❤️', '😂'];
/** Messages per history page. */
const PAGE = 50;
/** Within this many px of the bottom the list counts as "at the newest message" and follows new ones. */
const STICK_PX = 48;
/** Room list refresh while there are no live room-list events. */
const ROOMS_REFRESH_MS = 300_000;
const TITLE = 'nest-streaming chat';
const LOGIN_KEY = 'demo-chat-login';
const ROOM_KEY = 'demo-chat-room';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing from the page`);
  return node as T;
};
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const button = (text: string, className: string, onClick: () => void, title?: string): HTMLButtonElement => {
  const b = el('button', { type: 'button', className, textContent: text });
  if (title) {
    b.title = title;
    b.setAttribute('aria-label', title);
  }
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    onClick();
  });
  return b;
};

/** addEventListener for async handlers: failures become a toast. */
function listen(target: string | EventTarget, event: string, handler: (e: Event) => Promise<void>): void {
  const t = typeof target === 'string' ? $(target) : target;
  t.addEventListener(event, (e) => void handler(e).catch(showError));
}

interface RoomState {
  room: WireRoom;
  member: boolean;
  unread: number;
}

interface RenderedMessage {
  m: WireMessage;
  key: string;
  node: HTMLElement;
}

const state = {
  me: '',
  token: '',
  client: null as StreamingClient | null,
  loggingOut: false,
  disconnected: false,
  rooms: new Map<string, RoomState>(),
  /** Known membership per room id (kept between refreshes; updated by room_* events). */
  membership: new Map<string, boolean>(),
  fullRoomRefresh: true,
  current: null as string | null,
  /** Whether the current room was opened as a member (its history and members are loaded). */
  openedAsMember: false,
  /** Bumped on every openRoom: answers for an older one are dropped. */
  openSeq: 0,
  historyLoaded: false,
  members: new Map<string, Role>(),
  presence: new Map<string, WirePresence>(),
  messages: new Map<string, WireMessage>(),
  rendered: new Map<string, RenderedMessage>(),
  separators: new Map<string, HTMLElement>(),
  /** An older page came back empty: nothing more to load although the oldest seq is above 1. */
  noOlder: false,
  loadingOlder: false,
  /** The list follows new messages (the user has not scrolled up). */
  stick: true,
  /** Messages that arrived while the user was scrolled up. */
  unseen: 0,
  editing: null as { id: string; draft: string } | null,
  confirmingDelete: null as string | null,
  typing: new Map<string, number>(),
  typingSentAt: 0,
  /** The highest seq marked read per room (from get_unread, mark_read acks and read_state events). */
  readSeq: new Map<string, number>(),
  /** The side panel: a thread of the current room, or search results in it. */
  panel: null as Panel | null,
};

type Panel =
  | { kind: 'thread'; roomId: string; threadId: string; messages: Map<string, WireMessage> }
  | { kind: 'search'; roomId: string; query: string; results: WireMessage[] };

const client = (): StreamingClient => {
  if (!state.client) throw new Error('not connected');
  return state.client;
};
const api = <T>(method: string, path: string, body?: unknown): Promise<T> =>
  client().http<T>(method, path, body);
const myRole = (): Role | undefined => state.members.get(state.me);
const myRank = (): number => RANK[myRole() ?? 'member'];

// --------------------------------------------------------- toasts, banner ----

/** A toast in the bottom corner; errors stay 6 s, notices 4 s (hovering pauses the countdown). */
function toast(text: string, kind: 'error' | 'info' = 'error', code?: string): void {
  const box = $('toasts');
  const item = el('div', { className: `toast ${kind}` });
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (code) item.dataset.code = code;
  let timer = 0;
  const dismiss = () => {
    window.clearTimeout(timer);
    item.classList.add('leaving');
    window.setTimeout(() => item.remove(), 200);
  };
  const arm = () => {
    timer = window.setTimeout(dismiss, kind === 'error' ? 6000 : 4000);
  };
  item.append(
    el('span', { className: 'toast-text', textContent: text }),
    button('✕', 'icon-btn', dismiss, 'Dismiss'),
  );
  item.addEventListener('mouseenter', () => window.clearTimeout(timer));
  item.addEventListener('mouseleave', arm);
  box.append(item);
  while (box.children.length > 4) box.firstElementChild?.remove();
  arm();
}

/** Wording for error codes whose server sentence is too technical to show (it may name room ids). */
const FRIENDLY_ERRORS: Record<string, (data: Record<string, unknown>) => string> = {
  muted: (d) =>
    typeof d.until === 'string'
      ? `You are muted in this room until ${timeLabel(d.until)}.`
      : 'You are muted in this room.',
  banned: () => 'You are banned from this room.',
  not_room_member: () => 'Join the room first.',
  room_full: () => 'This room is full.',
  rate_limited: () => 'You are sending too fast: wait a moment and try again.',
  message_too_large: () => 'That message is too long.',
  content_filtered: () => 'That message was blocked by the content filter.',
  offline_buffer_full: () => 'You are offline and too much is waiting to be sent.',
};

function showError(err: unknown): void {
  if (err instanceof StreamingClientError) {
    const friendly = FRIENDLY_ERRORS[err.code]?.(err.data);
    const text = friendly ?? (err.message ? err.message[0].toUpperCase() + err.message.slice(1) : err.code);
    toast(text, 'error', err.code);
  } else toast(err instanceof Error ? err.message : String(err), 'error');
}

/** The connection strip under the chat header (in the layout: it never covers anything). */
function banner(text: string | null, action?: { label: string; run: () => void }): void {
  const b = $('banner');
  b.replaceChildren();
  if (text) b.append(el('span', { textContent: text }));
  if (text && action) b.append(button(action.label, '', action.run));
  b.classList.toggle('hidden', !text);
}

// ------------------------------------------------------------------ login ----

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $<HTMLInputElement>('username').value.trim();
  $('login-error').textContent = '';
  $<HTMLButtonElement>('login-button').disabled = true;
  login(name)
    .catch((err: unknown) => {
      $('login-error').textContent = `Login failed: ${err instanceof Error ? err.message : String(err)}`;
    })
    .finally(() => ($<HTMLButtonElement>('login-button').disabled = false));
});

async function login(username: string): Promise<void> {
  const res = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  const body = (await res.json().catch(() => ({}))) as { token?: string; message?: unknown };
  if (!res.ok || !body.token) {
    const why = Array.isArray(body.message)
      ? body.message.join(', ')
      : typeof body.message === 'string'
        ? body.message
        : `HTTP ${res.status}`;
    $('login-error').textContent = `Login failed: ${why}`;
    return;
  }
  state.me = username;
  state.token = body.token;
  sessionStorage.setItem(LOGIN_KEY, JSON.stringify({ username, token: body.token }));
  await start();
}

async function start(): Promise<void> {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const c = new StreamingClient({ url, getToken: () => state.token });
  state.client = c;
  wire(c);
  try {
    await c.connect();
  } catch (err) {
    state.client = null;
    c.close();
    throw err;
  }
  $('login').classList.add('hidden');
  $('app').classList.remove('hidden');
  $('me-name').textContent = state.me;
  paintAvatar($('me-avatar'), state.me);
  showAdminLink();
  renderChat();
  await refreshRooms(true);
  await syncUnread();
  const last = sessionStorage.getItem(ROOM_KEY);
  if (last && state.rooms.has(last)) await openRoom(last);
  startRoomPolling();
}

/** Admins (the `admin` role of the token) get a link to the admin console, which takes the token in its URL fragment. */
function showAdminLink(): void {
  let roles: unknown;
  try {
    const payload = state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    roles = (JSON.parse(atob(payload)) as { roles?: unknown }).roles;
  } catch {
    roles = undefined;
  }
  const link = $<HTMLAnchorElement>('admin-link');
  const admin = Array.isArray(roles) && roles.includes('admin');
  link.classList.toggle('hidden', !admin);
  link.href = admin ? `/_/streaming/admin#token=${encodeURIComponent(state.token)}` : '/_/streaming/admin';
}

function logout(): void {
  state.loggingOut = true;
  sessionStorage.removeItem(LOGIN_KEY);
  sessionStorage.removeItem(ROOM_KEY);
  state.client?.close();
  location.reload();
}
$('logout').addEventListener('click', logout);

// ----------------------------------------------------------------- events ----

function wire(c: StreamingClient): void {
  c.on('state', ({ state: s }) => {
    if (s === 'reconnecting') {
      state.disconnected = true;
      banner('Connection lost: reconnecting…', {
        label: 'Retry now',
        run: () => void c.connect().catch(() => undefined),
      });
    } else if (s === 'open') {
      banner(null);
      if (state.disconnected) {
        state.disconnected = false;
        void resync();
      }
    } else if (s === 'closed' && !state.loggingOut && !$('app').classList.contains('hidden')) {
      banner('Disconnected.', { label: 'Reconnect', run: () => void c.connect().catch(showError) });
    }
  });
  // 4403: the server (an administrator, another service) disconnected this user; the client does not reconnect.
  c.on('disconnected', (e) => {
    if (e.code !== 4403 || state.loggingOut) return;
    banner(`Disconnected: ${e.reason || 'by the server'}.`, {
      label: 'Reconnect',
      run: () => void c.connect().catch(showError),
    });
  });
  c.on('auth_expired', () => banner('Your session expired.', { label: 'Log in again', run: logout }));
  window.addEventListener('online', () => {
    if (c.state === 'reconnecting') void c.connect().catch(() => undefined);
  });

  c.on('message', (m) => {
    const p = state.panel;
    if (p?.kind === 'thread' && p.roomId === m.room_id && m.thread_id === p.threadId) {
      p.messages.set(m.id, m);
      renderPanel();
    }
    if (m.room_id !== state.current) {
      const r = state.rooms.get(m.room_id);
      if (!r)
        void refreshRooms()
          .then(syncUnread)
          .catch(() => undefined);
      else if (m.user_id !== state.me) {
        r.unread += 1;
        renderRooms();
      }
      return;
    }
    if (state.typing.delete(m.user_id)) renderTyping();
    addMessages([m], 'live');
  });
  c.on('message_edited', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => ({ ...m, content: e.content, edited_at: e.edited_at })),
  );
  c.on('message_deleted', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => ({ ...m, content: '', deleted: true, reactions: {} })),
  );
  c.on('reaction_added', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => ({
      ...m,
      reactions: {
        ...m.reactions,
        [e.reaction]: [...(m.reactions[e.reaction] ?? []).filter((u) => u !== e.user_id), e.user_id],
      },
    })),
  );
  c.on('reaction_removed', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => {
      const users = (m.reactions[e.reaction] ?? []).filter((u) => u !== e.user_id);
      const reactions = { ...m.reactions };
      if (users.length > 0) reactions[e.reaction] = users;
      else delete reactions[e.reaction];
      return { ...m, reactions };
    }),
  );
  c.on('thread_updated', (e) =>
    patchMessage(e.room_id, e.thread_id, (m) => ({
      ...m,
      reply_count: e.reply_count,
      last_reply_at: e.last_reply_at,
    })),
  );
  c.on('read_state', (e) => {
    state.readSeq.set(e.room_id, Math.max(state.readSeq.get(e.room_id) ?? 0, e.last_read_seq));
    void syncUnread();
  });
  c.on('typing', (e) => {
    if (e.room_id !== state.current || e.user_id === state.me) return;
    if (e.typing) state.typing.set(e.user_id, Date.now());
    else state.typing.delete(e.user_id);
    renderTyping();
  });
  c.on('presence', (p) => {
    state.presence.set(p.user_id, p);
    if (p.user_id === state.me && p.status !== 'offline') $<HTMLSelectElement>('my-status').value = p.status;
    renderMembers();
  });

  for (const ev of ['user_joined', 'user_left', 'role_changed'] as const) {
    c.on(ev, (e) => {
      if (e.room_id === state.current) void loadMembers(e.room_id).catch(() => undefined);
    });
  }
  for (const ev of [
    'member_banned',
    'member_kicked',
    'member_muted',
    'member_unmuted',
    'member_unbanned',
  ] as const) {
    c.on(ev, (e) => {
      if (e.target_id === state.me && ev === 'member_muted') {
        toast(`You were muted in ${roomName(e.room_id)}${e.reason ? ` (${e.reason})` : ''}.`, 'info');
      } else if (e.target_id === state.me && ev === 'member_unmuted') {
        toast(`You can write in ${roomName(e.room_id)} again.`, 'info');
      }
      if (e.room_id !== state.current) return;
      void loadMembers(e.room_id).catch(() => undefined);
      void loadModLog();
    });
  }

  // Room list: other users' public rooms arrive live (room_listed / room_unlisted), own rooms by their events.
  c.on('room_listed', (e) => {
    const known = state.rooms.get(e.room.id);
    state.rooms.set(e.room.id, {
      room: e.room,
      member: known?.member ?? state.membership.get(e.room.id) ?? false,
      unread: known?.unread ?? 0,
    });
    renderRooms();
  });
  c.on('room_unlisted', (e) => {
    const known = state.rooms.get(e.room_id);
    if (!known || known.member) return; // a member still sees a room made private
    state.rooms.delete(e.room_id);
    renderRooms();
  });
  c.on('room_created', (e) => {
    state.membership.set(e.room_id, true);
    void refreshRooms().catch(() => undefined);
  });
  c.on('room_joined', (e) => {
    const wasMember = state.membership.get(e.room_id) === true;
    setMember(e.room_id, true);
    void refreshRooms()
      .then(syncUnread)
      .catch(() => undefined);
    // Joined elsewhere (another tab, an invitation accepted there): show the room as a member.
    if (!wasMember && e.room_id === state.current && !state.openedAsMember) void openRoom(e.room_id);
  });
  c.on('room_left', (e) => {
    setMember(e.room_id, false);
    if (e.room_id === state.current) {
      const why = e.reason ? ` (${e.reason})` : '';
      toast(`You are no longer in ${roomName(e.room_id)}${why}.`, e.reason ? 'error' : 'info');
      void openRoom(e.room_id);
    }
    void refreshRooms().catch(() => undefined);
  });
  c.on('room_updated', (e) => {
    const r = state.rooms.get(e.room_id);
    if (r) r.room = e.room;
    renderRooms();
    renderChat();
  });
  c.on('room_deleted', (e) => {
    state.rooms.delete(e.room_id);
    state.membership.delete(e.room_id);
    if (e.room_id === state.current) {
      toast('This room was deleted.', 'info');
      closeRoom();
    }
    renderRooms();
  });
  c.on('rooms_gone', ({ room_ids }) => {
    if (state.current && room_ids.includes(state.current)) closeRoom();
    void refreshRooms(true).catch(() => undefined);
  });
  c.on('room_invitation', (inv) => {
    toast(`${inv.invited_by} invited you to ${inv.room_name}.`, 'info');
    const box = el('div', { className: 'invitation' });
    box.dataset.roomId = inv.room_id;
    const join = button('Join', '', () => {
      box.remove();
      void joinRoom(inv.room_id).catch(showError);
    });
    const dismiss = button('Dismiss', 'btn-ghost', () => box.remove());
    box.append(
      el('span', { textContent: `${inv.invited_by} invites you to ${inv.room_name}` }),
      el('div', { className: 'row' }, join, dismiss),
    );
    $('invitations').append(box);
  });
  c.on('gap', (g) => {
    if (g.room_id === state.current) void openRoom(g.room_id);
  });

  window.setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const [u, at] of state.typing) if (now - at > 8000) changed = state.typing.delete(u) || changed;
    if (changed) renderTyping();
  }, 2000);
}

/** After a reconnect: membership may have changed while offline (the client resumes the messages itself). */
async function resync(): Promise<void> {
  await refreshRooms(true).catch(() => undefined);
  await syncUnread();
  if (state.current && state.openedAsMember) await loadMembers(state.current).catch(() => undefined);
}

/** Unread counts from the server's read state (start, reconnect, read_state from another tab or device). */
async function syncUnread(): Promise<void> {
  const res = await state.client?.getUnread().catch(() => null);
  if (!res) return;
  for (const u of res.rooms) {
    state.readSeq.set(u.room_id, Math.max(state.readSeq.get(u.room_id) ?? 0, u.last_read_seq));
    const r = state.rooms.get(u.room_id);
    if (r) r.unread = u.room_id === state.current ? 0 : u.unread;
  }
  renderRooms();
}

const readThrottle = new Map<string, { last: number; timer: number }>();
/** At most one mark_read per second per room. */
const READ_EVERY_MS = 1000;

/**
 * The user sees the newest messages of the current room (history loaded,
 * scrolled to the bottom, page visible): mark them read (throttled).
 */
function noteRead(): void {
  const roomId = state.current;
  if (!roomId || !state.openedAsMember || !state.historyLoaded || !state.stick || document.hidden) return;
  let seq = 0;
  for (const m of state.messages.values()) seq = Math.max(seq, m.seq);
  if (!seq || seq <= (state.readSeq.get(roomId) ?? 0)) return;
  const t = readThrottle.get(roomId) ?? { last: 0, timer: 0 };
  readThrottle.set(roomId, t);
  const wait = t.last + READ_EVERY_MS - Date.now();
  if (wait > 0) {
    if (!t.timer)
      t.timer = window.setTimeout(() => {
        t.timer = 0;
        noteRead();
      }, wait);
    return;
  }
  t.last = Date.now();
  state.readSeq.set(roomId, seq);
  client()
    .markRead(roomId, seq)
    .then((ack) =>
      state.readSeq.set(ack.room_id, Math.max(state.readSeq.get(ack.room_id) ?? 0, ack.last_read_seq)),
    )
    .catch(() => {
      if (state.readSeq.get(roomId) === seq) state.readSeq.delete(roomId);
    });
}
document.addEventListener('visibilitychange', noteRead);

// ------------------------------------------------------------------ rooms ----

/** A direct room is named "a, b" (sorted ids): it is shown as the other user. */
const directPeer = (room: WireRoom): string => room.name.split(', ').find((u) => u !== state.me) ?? room.name;
const roomLabel = (room: WireRoom): string => (room.kind === 'direct' ? directPeer(room) : room.name);
const roomIcon = (room: WireRoom): string => (room.kind === 'direct' ? '@' : room.private ? '🔒' : '#');

const roomName = (roomId: string): string => {
  const r = state.rooms.get(roomId);
  return r
    ? r.room.kind === 'direct'
      ? `your conversation with ${directPeer(r.room)}`
      : `#${r.room.name}`
    : 'the room';
};

/** Open (or create) the direct room with `userId` and show it. */
async function openDirect(userId: string): Promise<void> {
  const { room } = await client().openDirect(userId);
  state.membership.set(room.id, true);
  const known = state.rooms.get(room.id);
  state.rooms.set(room.id, { room, member: true, unread: known?.unread ?? 0 });
  await openRoom(room.id);
  void refreshRooms().catch(() => undefined);
}

function setMember(roomId: string, member: boolean): void {
  state.membership.set(roomId, member);
  const r = state.rooms.get(roomId);
  if (r) r.member = member;
  renderRooms();
}

let roomsRefresh: Promise<void> | null = null;
let roomsRefreshAgain = false;

/**
 * Reload the room list (coalesced: calls during a refresh run it once more
 * afterwards). Membership is looked up only for rooms not seen before, or
 * for all of them with `full` (start, reconnect).
 */
function refreshRooms(full = false): Promise<void> {
  if (full) state.fullRoomRefresh = true;
  if (roomsRefresh) {
    roomsRefreshAgain = true;
    return roomsRefresh;
  }
  roomsRefresh = (async () => {
    try {
      do {
        roomsRefreshAgain = false;
        await loadRooms();
      } while (roomsRefreshAgain);
    } finally {
      roomsRefresh = null;
    }
  })();
  return roomsRefresh;
}

async function loadRooms(): Promise<void> {
  const full = state.fullRoomRefresh;
  state.fullRoomRefresh = false;
  const { rooms } = await api<{ rooms: WireRoom[] }>('GET', '/api/rooms');
  const unknown = rooms.filter((r) => full || !state.membership.has(r.id));
  // The list shows private rooms only to their members; public ones need a look at their members.
  const queue = [...unknown];
  const worker = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      if (r.private) {
        state.membership.set(r.id, true);
        continue;
      }
      const details = await api<WireRoom & { members: WireMember[] }>('GET', `/api/rooms/${r.id}`).catch(
        () => null,
      );
      if (details)
        state.membership.set(
          r.id,
          details.members.some((m) => m.user_id === state.me),
        );
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  state.rooms = new Map(
    rooms.map((r) => [
      r.id,
      { room: r, member: state.membership.get(r.id) ?? false, unread: state.rooms.get(r.id)?.unread ?? 0 },
    ]),
  );
  renderRooms();
  renderChat();
}

/**
 * The list follows room_listed / room_unlisted while connected; it is
 * reloaded at start and after a reconnect (events sent while offline are
 * not replayed), and as a safety net every few minutes while visible.
 */
function startRoomPolling(): void {
  const refresh = () => {
    if (document.hidden || state.client?.state !== 'open') return;
    void refreshRooms().catch(() => undefined);
  };
  window.setInterval(refresh, ROOMS_REFRESH_MS);
}

listen('refresh-rooms', 'click', () => refreshRooms(true));

function renderRooms(): void {
  const all = [...state.rooms.values()].sort((a, b) => roomLabel(a.room).localeCompare(roomLabel(b.room)));
  const direct = all.filter((r) => r.member && r.room.kind === 'direct');
  const mine = all.filter((r) => r.member && r.room.kind !== 'direct');
  const others = all.filter((r) => !r.member && r.room.kind !== 'direct');
  const item = (r: RoomState): HTMLLIElement => {
    const li = el('li', {
      className: `${r.room.id === state.current ? 'active' : ''}${r.unread ? ' unread' : ''}`,
    });
    li.dataset.roomId = r.room.id;
    if (r.room.kind === 'direct') li.dataset.peer = directPeer(r.room);
    const label = roomLabel(r.room);
    const b = el(
      'button',
      { type: 'button', className: 'room-btn', title: r.room.description || label },
      el('span', { className: 'room-icon', textContent: roomIcon(r.room) }),
      el('span', { className: 'room-name', textContent: label }),
    );
    if (r.unread)
      b.append(el('span', { className: 'badge', textContent: r.unread > 99 ? '99+' : String(r.unread) }));
    else if (!r.member) b.append(el('span', { className: 'tag', textContent: 'join' }));
    b.addEventListener('click', () => void openRoom(r.room.id).catch(showError));
    li.append(b);
    return li;
  };
  const section = (text: string) => el('li', { className: 'section', textContent: text });
  const items: HTMLLIElement[] = [];
  if (direct.length) items.push(section('Direct messages'), ...direct.map(item));
  if (mine.length) items.push(section('Your rooms'), ...mine.map(item));
  if (others.length) items.push(section('Other public rooms'), ...others.map(item));
  if (!all.length)
    items.push(el('li', { className: 'empty', textContent: 'No rooms yet: create one below.' }));
  const rooms = $('rooms');
  rooms.replaceChildren(...items);
  const unread = all.reduce((n, r) => n + r.unread, 0);
  document.title = unread ? `(${unread}) ${TITLE}` : TITLE;
}

listen('create-room', 'submit', async (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('new-room-name');
  const name = input.value.trim();
  if (!name) return;
  const priv = $<HTMLInputElement>('new-room-private').checked;
  const { room } = await client().createRoom({ name, private: priv });
  input.value = '';
  $<HTMLInputElement>('new-room-private').checked = false;
  state.membership.set(room.id, true);
  state.rooms.set(room.id, { room, member: true, unread: 0 });
  await openRoom(room.id);
  void refreshRooms().catch(() => undefined);
});

async function joinRoom(roomId: string): Promise<void> {
  await client().joinRoom(roomId);
  setMember(roomId, true);
  if (!state.rooms.has(roomId)) await refreshRooms();
  if (state.current !== roomId || !state.openedAsMember) await openRoom(roomId);
}

listen('join-room', 'click', async () => {
  if (state.current) await joinRoom(state.current);
});
listen('leave-room', 'click', async () => {
  if (state.current) await client().leaveRoom(state.current);
});

function resetRoomView(): void {
  state.messages.clear();
  state.rendered.clear();
  state.separators.clear();
  state.typing.clear();
  state.noOlder = false;
  state.historyLoaded = false;
  state.editing = null;
  state.confirmingDelete = null;
  state.unseen = 0;
  state.stick = true;
  state.members = new Map();
}

function closeRoom(): void {
  state.current = null;
  state.openedAsMember = false;
  state.openSeq += 1;
  sessionStorage.removeItem(ROOM_KEY);
  resetRoomView();
  renderAll();
}

async function openRoom(roomId: string): Promise<void> {
  const seq = ++state.openSeq;
  const switching = state.current !== roomId;
  state.current = roomId;
  sessionStorage.setItem(ROOM_KEY, roomId);
  resetRoomView();
  if (switching) closePanel();
  const r = state.rooms.get(roomId);
  if (r) r.unread = 0;
  const member = r?.member ?? state.membership.get(roomId) ?? false;
  state.openedAsMember = member;
  setDrawer(null);
  renderAll();
  if (!member) return;
  let messages: WireMessage[];
  try {
    // (called with `void` from event handlers: a failure is shown here, never left unhandled)
    [{ messages }] = await Promise.all([
      client().getHistory(roomId, { limit: PAGE }),
      loadMembers(roomId).catch(() => undefined),
    ]);
  } catch (err) {
    if (seq === state.openSeq) showError(err);
    return;
  }
  if (seq !== state.openSeq) return;
  state.historyLoaded = true;
  addMessages(messages, 'initial');
  noteRead();
  void loadModLog();
  if (switching && matchMedia('(min-width: 720px)').matches) $('message-input').focus();
}

function renderAll(): void {
  renderRooms();
  renderChat();
  layout();
  renderTyping();
  renderJump();
  renderMembers();
  renderModLog([]);
}

/** Header, join/leave, composer and the empty state of the chat column. */
function renderChat(): void {
  const r = state.current ? state.rooms.get(state.current) : undefined;
  const member = state.current !== null && state.openedAsMember;
  $('room-title').textContent = state.current ? (r ? roomLabel(r.room) : 'Room') : 'Pick or create a room';
  $('room-icon').textContent = state.current && r ? roomIcon(r.room) : '';
  const online = [...state.members.keys()].filter(
    (u) => (state.presence.get(u)?.status ?? 'offline') !== 'offline',
  ).length;
  const count = member ? state.members.size : (r?.room.member_count ?? 0);
  const parts: string[] = [];
  if (r?.room.description) parts.push(r.room.description);
  if (state.current) parts.push(`${count} member${count === 1 ? '' : 's'}`);
  if (member && state.members.size) parts.push(`${online} online`);
  $('room-meta').textContent = parts.join(' · ');
  $('member-count').textContent = member ? String(state.members.size) : '';
  $('join-room').classList.toggle('hidden', !state.current || member);
  $('leave-room').classList.toggle('hidden', !member);
  $('composer').classList.toggle('hidden', !member);
  $('toggle-members').classList.toggle('hidden', !member);
  $('search-form').classList.toggle('hidden', !member);

  const empty = $('empty-state');
  const action = $<HTMLButtonElement>('empty-action');
  let text = '';
  let act: { label: string; run: () => void } | null = null;
  if (!state.current) {
    text = 'Pick a room from the list, or create one.';
    if (!matchMedia('(min-width: 720px)').matches)
      act = { label: 'Browse rooms', run: () => setDrawer('sidebar') };
  } else if (!member) {
    text = r?.room.private
      ? 'This room is private: join it by invitation.'
      : `Join #${r?.room.name ?? 'this room'} to read and write messages.`;
    if (!r?.room.private)
      act = { label: 'Join room', run: () => void joinRoom(state.current ?? '').catch(showError) };
  } else if (state.historyLoaded && state.messages.size === 0) {
    text = 'No messages yet. Say hello 👋';
  }
  empty.classList.toggle('hidden', !text);
  $('empty-text').textContent = text;
  action.classList.toggle('hidden', !act);
  action.textContent = act?.label ?? '';
  action.onclick = act ? () => act.run() : null;
}

// --------------------------------------------------------------- messages ----

const list = (): HTMLElement => $('messages');
const distanceFromBottom = (l: HTMLElement): number => l.scrollHeight - l.scrollTop - l.clientHeight;

function scrollToBottom(): void {
  const l = list();
  l.scrollTop = l.scrollHeight;
  state.stick = true;
  state.unseen = 0;
  renderJump();
}

function renderJump(): void {
  const jump = $('jump-newest');
  jump.classList.toggle('hidden', state.stick || !state.current);
  jump.textContent =
    state.unseen > 0 ? `${state.unseen} new message${state.unseen === 1 ? '' : 's'} ↓` : 'Jump to newest ↓';
}

list().addEventListener(
  'scroll',
  () => {
    state.stick = distanceFromBottom(list()) < STICK_PX;
    if (state.stick) state.unseen = 0;
    renderJump();
    noteRead();
  },
  { passive: true },
);
// The list got shorter or taller (window, composer, banner): stay on the newest message if we were there.
new ResizeObserver(() => {
  if (state.stick) list().scrollTop = list().scrollHeight;
}).observe(list());
$('jump-newest').addEventListener('click', scrollToBottom);

interface Anchor {
  id: string;
  offset: number;
}

/** The first message at least partly visible (by id: its node may be rebuilt), and its offset from the list's top. */
function captureAnchor(): Anchor | null {
  const l = list();
  const top = l.getBoundingClientRect().top;
  for (const node of Array.from(l.querySelectorAll<HTMLElement>('.msg'))) {
    const rect = node.getBoundingClientRect();
    if (rect.bottom > top && node.dataset.id) return { id: node.dataset.id, offset: rect.top - top };
  }
  return null;
}

function restoreAnchor(anchor: Anchor | null): void {
  if (!anchor) return;
  const l = list();
  const node = l.querySelector(`.msg[data-id="${CSS.escape(anchor.id)}"]`);
  if (!node) return;
  l.scrollTop += node.getBoundingClientRect().top - l.getBoundingClientRect().top - anchor.offset;
}

/**
 * Re-render the list after a change that adds nothing at the end (a patch,
 * an edit or delete prompt): stay at the bottom if we were there, else keep
 * the first visible message where it was; an open editor keeps the focus.
 */
function rerender(): void {
  const active = document.activeElement;
  const editorFocused = active instanceof HTMLElement && active.classList.contains('edit-input');
  const anchor = state.stick ? null : captureAnchor();
  layout();
  if (state.stick) list().scrollTop = list().scrollHeight;
  else restoreAnchor(anchor);
  if (editorFocused && document.activeElement !== active) focusEditor();
}

/** Merge messages into the current room and re-render; `mode` decides what happens to the scroll position. */
function addMessages(messages: WireMessage[], mode: 'initial' | 'live' | 'older'): void {
  const wasStuck = state.stick;
  const anchor = mode === 'older' ? captureAnchor() : null;
  let fresh = 0;
  let mineFresh = false;
  for (const m of messages) {
    if (m.room_id !== state.current) continue;
    if (!state.messages.has(m.id)) {
      fresh += 1;
      if (m.user_id === state.me) mineFresh = true;
    }
    state.messages.set(m.id, m);
  }
  layout();
  renderChat();
  if (mode === 'initial') scrollToBottom();
  else if (mode === 'older') restoreAnchor(anchor);
  else if (wasStuck || mineFresh) scrollToBottom();
  else if (fresh > 0) {
    state.unseen += fresh;
    renderJump();
  }
  if (mode === 'live') noteRead();
}

function patchMessage(roomId: string, messageId: string, f: (m: WireMessage) => WireMessage): void {
  const p = state.panel;
  if (p?.roomId === roomId) {
    const inPanel = p.kind === 'thread' ? p.messages.get(messageId) : undefined;
    if (p.kind === 'thread' && inPanel) p.messages.set(messageId, f(inPanel));
    if (p.kind === 'search') p.results = p.results.map((m) => (m.id === messageId ? f(m) : m));
    renderPanel();
  }
  if (roomId !== state.current) return;
  const m = state.messages.get(messageId);
  if (!m) return;
  state.messages.set(messageId, f(m));
  if (state.confirmingDelete === messageId && state.messages.get(messageId)?.deleted)
    state.confirmingDelete = null;
  if (state.editing?.id === messageId && state.messages.get(messageId)?.deleted) state.editing = null;
  rerender();
}

function oldestSeq(): number {
  let oldest = Infinity;
  for (const m of state.messages.values()) oldest = Math.min(oldest, m.seq);
  return oldest;
}

/** Whether older history may exist: the oldest loaded message is not seq 1 (and the last page was not empty). */
const hasOlder = (): boolean =>
  state.openedAsMember && !state.noOlder && Number.isFinite(oldestSeq()) && oldestSeq() > 1;

listen('older', 'click', async () => {
  const roomId = state.current;
  if (!roomId || state.loadingOlder || !hasOlder()) return;
  const seq = state.openSeq;
  state.loadingOlder = true;
  const btn = $<HTMLButtonElement>('older');
  btn.disabled = true;
  btn.textContent = 'Loading…';
  try {
    const { messages } = await client().getHistory(roomId, { limit: PAGE, before: oldestSeq() });
    if (seq !== state.openSeq) return;
    if (messages.length === 0) state.noOlder = true;
    addMessages(messages, 'older');
  } finally {
    state.loadingOlder = false;
    btn.disabled = false;
    btn.textContent = 'Load older messages';
  }
});

function paintAvatar(node: HTMLElement, userId: string): HTMLElement {
  node.textContent = initials(userId);
  node.style.setProperty('--hue', String(hueFor(userId)));
  node.title = userId;
  return node;
}
const avatar = (userId: string, size = ''): HTMLElement =>
  paintAvatar(el('span', { className: `avatar ${size}`.trim() }), userId);

/** Message text as DOM: text nodes, and `<a>` only for http(s) URLs. */
function richText(text: string): HTMLElement {
  const span = el('span', { className: 'text' });
  for (const seg of linkSegments(text)) {
    if (seg.kind === 'text') span.append(document.createTextNode(seg.text));
    else {
      const a = el('a', {
        href: seg.href,
        textContent: seg.text,
        target: '_blank',
        rel: 'noopener noreferrer',
      });
      span.append(a);
    }
  }
  return span;
}

function separator(day: string, at: string): HTMLElement {
  let node = state.separators.get(day);
  if (!node) {
    node = el('div', { className: 'day-separator' });
    node.setAttribute('role', 'separator');
    node.dataset.day = day;
    state.separators.set(day, node);
  }
  const label = dayLabel(at);
  if (node.textContent !== label) node.textContent = label;
  return node;
}

/** A message's node, rebuilt only when the message, my role or its edit/delete state changed. */
function messageNode(m: WireMessage): HTMLElement {
  const key = `${myRank()}|${state.editing?.id === m.id}|${state.confirmingDelete === m.id}`;
  const cached = state.rendered.get(m.id);
  if (cached && cached.m === m && cached.key === key) return cached.node;
  const node = buildMessage(m);
  state.rendered.set(m.id, { m, key, node });
  return node;
}

/**
 * Render the list: day separators, grouping, nodes reused by id. Existing
 * nodes are never moved (only new ones inserted, stale ones removed), so
 * an open editor keeps its focus and the scroll position its meaning.
 */
function layout(): void {
  const l = list();
  const sorted = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  const desired: HTMLElement[] = [$('older')];
  const days = new Set<string>();
  let prev: WireMessage | undefined;
  for (const m of sorted) {
    const day = dayKey(m.timestamp);
    if (!prev || dayKey(prev.timestamp) !== day) {
      desired.push(separator(day, m.timestamp));
      days.add(day);
    }
    const node = messageNode(m);
    node.classList.toggle('grouped', continuesGroup(prev, m));
    desired.push(node);
    prev = m;
  }
  const keep = new Set<Element>(desired);
  for (const child of Array.from(l.children)) if (!keep.has(child)) child.remove();
  let cursor = l.firstElementChild;
  for (const node of desired) {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else l.insertBefore(node, cursor);
  }
  for (const id of state.rendered.keys()) if (!state.messages.has(id)) state.rendered.delete(id);
  for (const day of state.separators.keys()) if (!days.has(day)) state.separators.delete(day);
  $('older').classList.toggle('hidden', !hasOlder());
}

function buildMessage(m: WireMessage): HTMLElement {
  const mine = m.user_id === state.me;
  const editing = state.editing?.id === m.id && !m.deleted;
  const node = el('div', {
    className: `msg${m.deleted ? ' deleted' : ''}${mine ? ' mine' : ''}${editing ? ' editing' : ''}`,
  });
  node.dataset.id = m.id;
  node.dataset.seq = String(m.seq);
  node.dataset.user = m.user_id;

  const time = timeLabel(m.timestamp);
  const when = el('time', { className: 'when', textContent: time, title: fullTimeLabel(m.timestamp) });
  when.dateTime = m.timestamp;
  const gutter = el(
    'div',
    { className: 'gutter' },
    avatar(m.user_id),
    el('span', { className: 'hover-time', textContent: time, title: fullTimeLabel(m.timestamp) }),
  );
  const content = el(
    'div',
    { className: 'content' },
    el('div', { className: 'meta' }, el('span', { className: 'who', textContent: m.user_id }), when),
  );

  if (editing) content.append(editor(m));
  else {
    const body = el('div', { className: 'body' });
    body.append(
      m.deleted ? el('span', { className: 'text', textContent: 'message deleted' }) : richText(m.content),
    );
    if (m.edited_at && !m.deleted)
      body.append(
        el('span', { className: 'edited', textContent: '(edited)', title: fullTimeLabel(m.edited_at) }),
      );
    content.append(body);
  }
  if (m.reply_count && !editing) {
    const n = m.reply_count;
    content.append(
      button(`${n} ${n === 1 ? 'reply' : 'replies'}`, 'link thread-link', () => void openThread(m.id)),
    );
  } else if (m.thread_id && m.thread_id !== m.id && !editing) {
    const root = m.thread_id;
    content.append(button('in a thread', 'link in-thread', () => void openThread(root)));
  }
  if (state.confirmingDelete === m.id && !m.deleted) content.append(deleteConfirm(m));

  const reactions = el('div', { className: 'reactions' });
  for (const [emoji, users] of Object.entries(m.reactions)) {
    const b = button(
      `${emoji} ${users.length}`,
      `reaction${users.includes(state.me) ? ' mine' : ''}`,
      () => void toggleReaction(m.id, emoji),
    );
    b.title = users.join(', ');
    reactions.append(b);
  }
  content.append(reactions);
  node.append(gutter, content);

  if (!m.deleted && !editing) {
    const actions = el('div', { className: 'actions' });
    for (const r of REACTIONS)
      actions.append(button(r, 'link', () => void toggleReaction(m.id, r), `react ${r}`));
    actions.append(
      button('reply', 'link thread-reply', () => void openThread(m.thread_id ?? m.id), 'Reply in thread'),
    );
    if (mine) actions.append(button('edit', 'link edit', () => startEdit(m.id), 'Edit message'));
    if (mine || myRank() >= RANK.moderator)
      actions.append(button('delete', 'link delete', () => askDelete(m.id), 'Delete message'));
    node.append(actions);
  }
  // Touch screens have no hover: a tap shows the actions.
  node.addEventListener('click', (e) => {
    if ((e.target as HTMLElement).closest('a, button, textarea, input')) return;
    for (const other of Array.from(list().querySelectorAll('.msg.show-actions')))
      if (other !== node) other.classList.remove('show-actions');
    node.classList.toggle('show-actions');
  });
  return node;
}

// --------------------------------------------------------- edit, delete ----

function editor(m: WireMessage): HTMLElement {
  const input = el('textarea', {
    className: 'edit-input',
    value: state.editing?.draft ?? m.content,
    rows: 1,
  });
  input.setAttribute('aria-label', 'Edit message');
  const grow = () => {
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight + 2}px`;
  };
  input.addEventListener('input', () => {
    if (state.editing) state.editing.draft = input.value;
    grow();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      cancelEdit();
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void saveEdit(m.id, input);
    }
  });
  requestAnimationFrame(grow);
  const hint = el(
    'div',
    { className: 'edit-hint' },
    'Enter to save · Escape to cancel',
    button('Save', 'edit-save', () => void saveEdit(m.id, input)),
    button('Cancel', 'btn-ghost edit-cancel', cancelEdit),
  );
  return el('div', { className: 'edit-form' }, input, hint);
}

function focusEditor(): void {
  const input = list().querySelector<HTMLTextAreaElement>('.msg.editing .edit-input');
  if (!input) return;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function startEdit(id: string): void {
  const m = state.messages.get(id);
  if (!m || m.deleted || m.user_id !== state.me) return;
  state.editing = { id, draft: m.content };
  state.confirmingDelete = null;
  rerender();
  focusEditor();
}

function cancelEdit(): void {
  state.editing = null;
  rerender();
  $('message-input').focus();
}

async function saveEdit(id: string, input: HTMLTextAreaElement): Promise<void> {
  const m = state.messages.get(id);
  const content = input.value;
  if (!m || !content.trim() || content === m.content) return cancelEdit();
  input.disabled = true;
  try {
    await client().editMessage(m.room_id, id, content);
    state.editing = null;
    // The message_edited event carries the server's edited_at; show the change at once meanwhile.
    patchMessage(m.room_id, id, (cur) => ({
      ...cur,
      content,
      edited_at: cur.edited_at ?? new Date().toISOString(),
    }));
    $('message-input').focus();
  } catch (err) {
    input.disabled = false;
    input.focus();
    showError(err);
  }
}

function askDelete(id: string): void {
  state.confirmingDelete = id;
  state.editing = null;
  rerender();
  list().querySelector<HTMLButtonElement>('.delete-confirm .confirm-delete')?.focus();
}

function deleteConfirm(m: WireMessage): HTMLElement {
  const cancel = () => {
    state.confirmingDelete = null;
    rerender();
  };
  const yes = button('Delete', 'btn-danger confirm-delete', () => {
    yes.disabled = true;
    client()
      .deleteMessage(m.room_id, m.id)
      .catch((err: unknown) => {
        showError(err);
        cancel();
      });
  });
  const box = el(
    'div',
    { className: 'delete-confirm' },
    'Delete this message?',
    yes,
    button('Cancel', 'btn-ghost cancel-delete', cancel),
  );
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') cancel();
  });
  return box;
}

async function toggleReaction(messageId: string, emoji: string): Promise<void> {
  const m = state.messages.get(messageId);
  if (!m || !state.current) return;
  const mine = (m.reactions[emoji] ?? []).includes(state.me);
  try {
    if (mine) await client().removeReaction(state.current, messageId, emoji);
    else await client().addReaction(state.current, messageId, emoji);
  } catch (err) {
    showError(err);
  }
}

// --------------------------------------------------------------- composer ----

const input = $<HTMLTextAreaElement>('message-input');
const growComposer = () => {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
};

listen('composer', 'submit', async (e) => {
  e.preventDefault();
  const content = input.value;
  const roomId = state.current;
  if (!content.trim() || !roomId) return;
  input.value = '';
  growComposer();
  try {
    await client().sendMessage(roomId, content);
    state.typingSentAt = 0;
  } catch (err) {
    if (!input.value) input.value = content;
    growComposer();
    showError(err);
  }
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $<HTMLFormElement>('composer').requestSubmit();
  } else if (e.key === 'ArrowUp' && !input.value) {
    // Edit my last message, as in most chat apps.
    const last = [...state.messages.values()]
      .filter((m) => m.user_id === state.me && !m.deleted)
      .sort((a, b) => b.seq - a.seq)[0];
    if (last) {
      e.preventDefault();
      startEdit(last.id);
    }
  }
});

input.addEventListener('input', () => {
  growComposer();
  const roomId = state.current;
  if (!roomId) return;
  if (!input.value) {
    if (state.typingSentAt)
      void client()
        .stopTyping(roomId)
        .catch(() => undefined);
    state.typingSentAt = 0;
    return;
  }
  const now = Date.now();
  if (now - state.typingSentAt > 2000) {
    state.typingSentAt = now;
    void client()
      .startTyping(roomId)
      .catch(() => undefined);
  }
});

function renderTyping(): void {
  const names = [...state.typing.keys()];
  $('typing').textContent =
    names.length === 0
      ? ''
      : names.length <= 3
        ? `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`
        : `${names.length} people are typing…`;
}

// ------------------------------------------------- members, moderation ----

async function loadMembers(roomId: string): Promise<void> {
  const details = await api<WireRoom & { members: WireMember[] }>('GET', `/api/rooms/${roomId}`).catch(
    () => null,
  );
  if (!details || roomId !== state.current) return;
  const before = myRank();
  state.members = new Map(details.members.map((m) => [m.user_id, m.role]));
  const { presence } = await client()
    .getPresence({ room_id: roomId })
    .catch(() => ({ presence: [] as WirePresence[] }));
  if (roomId !== state.current) return;
  for (const p of presence) state.presence.set(p.user_id, p);
  $('invite-form').classList.toggle('hidden', myRank() < RANK.admin);
  renderMembers();
  renderChat();
  if (myRank() !== before) rerender(); // the delete action depends on my role
}

function renderMembers(): void {
  const mine = myRank();
  const order = { online: 0, busy: 1, away: 2, offline: 3 } as const;
  const status = (u: string) => state.presence.get(u)?.status ?? 'offline';
  const sorted = [...state.members].sort(
    ([a, ra], [b, rb]) => order[status(a)] - order[status(b)] || RANK[rb] - RANK[ra] || a.localeCompare(b),
  );
  const items = sorted.map(([userId, role]) => {
    const p = state.presence.get(userId);
    const st = status(userId);
    const pic = avatar(userId, 'sm');
    pic.append(el('span', { className: `dot ${st}`, title: st }));
    const li = el(
      'li',
      {},
      pic,
      el(
        'div',
        { className: 'who-block' },
        el('span', {
          className: 'member-name',
          textContent: userId === state.me ? `${userId} (you)` : userId,
        }),
        el('span', {
          className: 'role',
          textContent: p?.custom ? `“${p.custom}”` : st === 'offline' ? '' : st,
        }),
      ),
      el('span', { className: 'role-badge', textContent: role === 'member' ? '' : role }),
    );
    li.dataset.userId = userId;
    li.dataset.status = st;
    if (userId !== state.me)
      li.append(
        button(
          'Message',
          'btn-ghost dm-btn',
          () => void openDirect(userId).catch(showError),
          `Message ${userId}`,
        ),
      );
    if (userId !== state.me && mine >= RANK.moderator && mine > RANK[role]) {
      const menu = el('select', { className: 'mod-menu', title: `moderate ${userId}` });
      const options: Array<[string, string]> = [
        ['', '⋯'],
        ['kick', 'kick'],
        ['mute', 'mute 60 s'],
        ['unmute', 'unmute'],
      ];
      if (mine >= RANK.admin)
        options.push(['ban', 'ban'], ['promote', 'make moderator'], ['demote', 'make member']);
      menu.append(...options.map(([value, text]) => el('option', { value, textContent: text })));
      menu.onchange = () => void moderate(userId, menu.value).finally(() => (menu.value = ''));
      li.append(menu);
    }
    return li;
  });
  $('member-list').replaceChildren(...items);
  renderChat();
}

async function moderate(userId: string, action: string): Promise<void> {
  const room = state.current;
  if (!room || !action) return;
  try {
    if (action === 'promote') await client().setRole(room, userId, 'moderator');
    else if (action === 'demote') await client().setRole(room, userId, 'member');
    else {
      await client().moderate({
        room_id: room,
        action: action as 'kick' | 'mute' | 'unmute' | 'ban',
        target_id: userId,
        reason: 'from the demo page',
        ...(action === 'mute' ? { duration_s: 60 } : {}),
      });
    }
  } catch (err) {
    showError(err);
  }
}

interface ModLogEntry {
  action: string;
  moderator_id: string | null;
  target_id: string;
  at: string;
}

function renderModLog(entries: ModLogEntry[]): void {
  $('modlog-section').classList.toggle('hidden', entries.length === 0);
  $('modlog').replaceChildren(
    ...entries.map((e) =>
      el('li', {
        textContent: `${timeLabel(e.at)} ${e.moderator_id ?? 'server'} ${e.action} ${e.target_id}`,
        title: fullTimeLabel(e.at),
      }),
    ),
  );
}

async function loadModLog(): Promise<void> {
  const roomId = state.current;
  if (!roomId || myRank() < RANK.admin) return renderModLog([]);
  const { entries } = await api<{ entries: ModLogEntry[] }>(
    'GET',
    `/api/rooms/${roomId}/moderation?limit=20`,
  ).catch(() => ({ entries: [] as ModLogEntry[] }));
  if (roomId === state.current) renderModLog([...entries].reverse());
}

listen('invite-form', 'submit', async (e) => {
  e.preventDefault();
  const field = $<HTMLInputElement>('invite-user');
  const userId = field.value.trim();
  if (!state.current || !userId) return;
  await client().invite(state.current, userId);
  field.value = '';
  toast(`Invited ${userId}.`, 'info');
});

$('my-status').addEventListener('change', () => {
  const status = $<HTMLSelectElement>('my-status').value as 'online' | 'away' | 'busy';
  void client().setPresence(status).catch(showError);
});

// ---------------------------------------------------------------- drawers ----

function setDrawer(which: 'sidebar' | 'members' | null): void {
  const app = $('app');
  if (which && !wide()) closePanel();
  app.classList.toggle('sidebar-open', which === 'sidebar');
  app.classList.toggle('members-open', which === 'members');
  $('toggle-sidebar').setAttribute('aria-expanded', String(which === 'sidebar'));
  $('toggle-members').setAttribute('aria-expanded', String(which === 'members'));
}
const isOpen = (which: string) => $('app').classList.contains(`${which}-open`);
$('toggle-sidebar').addEventListener('click', () => setDrawer(isOpen('sidebar') ? null : 'sidebar'));
$('toggle-members').addEventListener('click', () => setDrawer(isOpen('members') ? null : 'members'));
$('close-members').addEventListener('click', () => setDrawer(null));
$('close-sidebar').addEventListener('click', () => setDrawer(null));
$('backdrop').addEventListener('click', () => {
  setDrawer(null);
  closePanel();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && (isOpen('sidebar') || isOpen('members'))) setDrawer(null);
  else if (e.key === 'Escape' && state.panel) closePanel();
});

// ------------------------------------------------------ threads, search ----

/** Side panel beside the chat from 1024 px; a drawer below. */
const wide = (): boolean => matchMedia('(min-width: 1024px)').matches;

function closePanel(): void {
  if (!state.panel) return;
  state.panel = null;
  renderPanel();
}

function showPanel(panel: Panel): void {
  state.panel = panel;
  setDrawer(null);
  renderPanel();
}

async function openThread(threadId: string): Promise<void> {
  const roomId = state.current;
  if (!roomId) return;
  const panel: Panel = { kind: 'thread', roomId, threadId, messages: new Map() };
  const root = state.messages.get(threadId);
  if (root) panel.messages.set(root.id, root);
  showPanel(panel);
  const { messages } = await client().getThread(roomId, threadId, 100);
  if (state.panel !== panel) return;
  for (const m of messages) panel.messages.set(m.id, m);
  renderPanel();
  if (wide()) $('thread-input').focus();
}

function panelMessage(m: WireMessage, onClick?: () => void): HTMLElement {
  const node = el('div', { className: `pmsg${m.deleted ? ' deleted' : ''}` });
  node.dataset.id = m.id;
  const when = el('time', {
    className: 'when',
    textContent: timeLabel(m.timestamp),
    title: fullTimeLabel(m.timestamp),
  });
  when.dateTime = m.timestamp;
  node.append(
    avatar(m.user_id, 'sm'),
    el(
      'div',
      { className: 'content' },
      el('div', { className: 'meta' }, el('span', { className: 'who', textContent: m.user_id }), when),
      el(
        'div',
        { className: 'body' },
        m.deleted ? el('span', { className: 'ptext', textContent: 'message deleted' }) : panelText(m.content),
      ),
    ),
  );
  if (onClick) {
    node.classList.add('clickable');
    node.tabIndex = 0;
    node.setAttribute('role', 'button');
    node.addEventListener('click', (e) => {
      if ((e.target as HTMLElement).closest('a')) return;
      onClick();
    });
    node.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        onClick();
      }
    });
  }
  return node;
}

/** richText with its own class: panel text is not message-list text. */
function panelText(text: string): HTMLElement {
  const span = richText(text);
  span.className = 'ptext';
  return span;
}

function renderPanel(): void {
  const p = state.panel;
  $('app').classList.toggle('panel-open', p !== null);
  const body = $('panel-body');
  $('thread-composer').classList.toggle('hidden', p?.kind !== 'thread');
  if (!p) {
    body.replaceChildren();
    $('side-panel').removeAttribute('data-kind');
    return;
  }
  $('side-panel').dataset.kind = p.kind;
  if (p.kind === 'thread') {
    $('panel-title').textContent = 'Thread';
    const sorted = [...p.messages.values()].sort((a, b) => a.seq - b.seq);
    const root = sorted.find((m) => m.id === p.threadId);
    const replies = sorted.filter((m) => m.id !== p.threadId);
    const items: HTMLElement[] = [];
    if (root) items.push(panelMessage(root, () => jumpTo(root.id)));
    items.push(
      el('div', {
        className: 'panel-divider',
        textContent: replies.length
          ? `${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}`
          : 'No replies yet',
      }),
    );
    items.push(...replies.map((m) => panelMessage(m)));
    const stick = body.scrollHeight - body.scrollTop - body.clientHeight < STICK_PX;
    body.replaceChildren(...items);
    if (stick) body.scrollTop = body.scrollHeight;
  } else {
    $('panel-title').textContent = `Search: ${p.query}`;
    const items: HTMLElement[] = p.results.length
      ? p.results.map((m) => panelMessage(m, () => jumpTo(m.id)))
      : [el('p', { className: 'panel-empty', textContent: 'No messages found.' })];
    body.replaceChildren(...items);
    body.scrollTop = 0;
  }
}

/** Scroll the message list to a message if it is loaded (and close the drawer on a narrow screen). */
function jumpTo(id: string): void {
  const node = list().querySelector<HTMLElement>(`.msg[data-id="${CSS.escape(id)}"]`);
  if (!node) {
    toast('That message is not loaded: load older messages first.', 'info');
    return;
  }
  if (!wide()) closePanel();
  node.scrollIntoView({ block: 'center' });
  node.classList.remove('flash');
  void node.offsetWidth;
  node.classList.add('flash');
  window.setTimeout(() => node.classList.remove('flash'), 1600);
}

$('close-panel').addEventListener('click', closePanel);

const threadInput = $<HTMLTextAreaElement>('thread-input');
listen('thread-composer', 'submit', async (e) => {
  e.preventDefault();
  const p = state.panel;
  const content = threadInput.value;
  if (p?.kind !== 'thread' || !content.trim()) return;
  threadInput.value = '';
  try {
    await client().sendMessage(p.roomId, content, undefined, { replyTo: p.threadId });
  } catch (err) {
    if (!threadInput.value) threadInput.value = content;
    showError(err);
  }
});
threadInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $<HTMLFormElement>('thread-composer').requestSubmit();
  }
});

listen('search-form', 'submit', async (e) => {
  e.preventDefault();
  const roomId = state.current;
  const query = $<HTMLInputElement>('search-input').value.trim();
  if (!roomId || !query) return;
  const { messages } = await client().searchMessages(roomId, query, 50);
  if (roomId !== state.current) return;
  showPanel({ kind: 'search', roomId, query, results: [...messages].sort((a, b) => b.seq - a.seq) });
});
matchMedia('(min-width: 1024px)').addEventListener('change', () => setDrawer(null));

// ------------------------------------------------------------------ boot ----

// Resume a session after a page reload.
const saved = sessionStorage.getItem(LOGIN_KEY);
if (saved) {
  const { username, token } = JSON.parse(saved) as { username: string; token: string };
  state.me = username;
  state.token = token;
  start().catch(() => {
    sessionStorage.removeItem(LOGIN_KEY);
    $('login').classList.remove('hidden');
    $('app').classList.add('hidden');
  });
}
