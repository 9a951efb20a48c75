/**
 * The demo chat page: plain DOM on the project's client library
 * (@nest-streaming/client), bundled by esbuild into public/app.js.
 */
import { StreamingClient, StreamingClientError } from '@nest-streaming/client';
import type { WireMessage, WireMember, WirePresence, WireRoom } from '@nest-streaming/client';

type Role = WireMember['role'];
const RANK: Record<Role, number> = { owner: 4, admin: 3, moderator: 2, member: 1 };
const REACTIONS = ['👍', '❤️', '😂'];

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

/** addEventListener for async handlers: failures become a banner. */
function listen(id: string, event: string, handler: (e: Event) => Promise<void>): void {
  $(id).addEventListener(event, (e) => void handler(e).catch(showError));
}

interface RoomState {
  room: WireRoom;
  member: boolean;
}

const state = {
  me: '',
  token: '',
  client: null as StreamingClient | null,
  rooms: new Map<string, RoomState>(),
  current: null as string | null,
  members: new Map<string, Role>(),
  presence: new Map<string, WirePresence>(),
  messages: new Map<string, WireMessage>(),
  oldestSeq: Infinity,
  typing: new Map<string, number>(),
  typingSentAt: 0,
};

function banner(text: string | null): void {
  const b = $('banner');
  b.textContent = text ?? '';
  b.classList.toggle('hidden', !text);
}

function showError(err: unknown): void {
  const msg = err instanceof StreamingClientError ? `${err.code}: ${err.message}` : String(err);
  banner(msg);
  setTimeout(() => banner(null), 4000);
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  return state.client!.http<T>(method, path, body);
}

// ---------------------------------------------------------------- login ----

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void login($<HTMLInputElement>('username').value.trim());
});

async function login(username: string): Promise<void> {
  const res = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  const body = (await res.json()) as { token?: string; message?: unknown };
  if (!res.ok || !body.token) {
    $('login-error').textContent = `login failed: ${JSON.stringify(body.message ?? res.status)}`;
    return;
  }
  state.me = username;
  state.token = body.token;
  sessionStorage.setItem('demo-chat-login', JSON.stringify({ username, token: body.token }));
  await start();
}

async function start(): Promise<void> {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const client = new StreamingClient({ url, getToken: () => state.token });
  state.client = client;
  wire(client);
  await client.connect();
  $('login').classList.add('hidden');
  $('app').classList.remove('hidden');
  $('me-name').textContent = state.me;
  await refreshRooms();
}

// ------------------------------------------------------------- events ----

function wire(c: StreamingClient): void {
  c.on('state', ({ state: s }) => banner(s === 'reconnecting' ? 'Connection lost: reconnecting…' : null));
  c.on('message', (m) => {
    if (m.room_id !== state.current) return;
    state.messages.set(m.id, m);
    state.typing.delete(m.user_id);
    renderMessage(m);
    renderTyping();
  });
  c.on('message_edited', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => ({ ...m, content: e.content, edited_at: e.edited_at })),
  );
  c.on('message_deleted', (e) =>
    patchMessage(e.room_id, e.message_id, (m) => ({ ...m, content: '', deleted: true })),
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
  c.on('typing', (e) => {
    if (e.room_id !== state.current || e.user_id === state.me) return;
    if (e.typing) state.typing.set(e.user_id, Date.now());
    else state.typing.delete(e.user_id);
    renderTyping();
  });
  c.on('presence', (p) => {
    state.presence.set(p.user_id, p);
    renderMembers();
  });
  const reloadMembers = (e: { room_id: string }) => {
    if (e.room_id === state.current) void loadMembers();
  };
  for (const ev of [
    'user_joined',
    'user_left',
    'role_changed',
    'member_banned',
    'member_kicked',
    'member_muted',
    'member_unmuted',
    'member_unbanned',
  ] as const) {
    c.on(ev, (e) => {
      reloadMembers(e);
      if (ev.startsWith('member_') && e.room_id === state.current) void loadModLog();
    });
  }
  c.on('room_left', (e) => {
    const r = state.rooms.get(e.room_id);
    if (r) r.member = false;
    if (e.room_id === state.current) {
      showError(`you are no longer in this room${'reason' in e && e.reason ? ` (${String(e.reason)})` : ''}`);
      void openRoom(e.room_id);
    }
    void refreshRooms();
  });
  c.on('room_invitation', (inv) => {
    const box = el('div', { className: 'invitation' }, `${inv.invited_by} invites you to ${inv.room_name} `);
    const join = el('button', { textContent: 'Join' });
    join.onclick = async () => {
      box.remove();
      await c.joinRoom(inv.room_id).catch(showError);
      await refreshRooms();
      await openRoom(inv.room_id);
    };
    box.append(join);
    $('invitations').append(box);
  });
  c.on('gap', (g) => {
    if (g.room_id === state.current) void openRoom(g.room_id);
  });
  setInterval(() => {
    const now = Date.now();
    for (const [u, at] of state.typing) if (now - at > 8000) state.typing.delete(u);
    renderTyping();
  }, 2000);
}

// -------------------------------------------------------------- rooms ----

async function refreshRooms(): Promise<void> {
  const { rooms } = await api<{ rooms: WireRoom[] }>('GET', '/api/rooms');
  const mine = new Set<string>();
  for (const r of rooms) {
    const details = await api<WireRoom & { members: WireMember[] }>('GET', `/api/rooms/${r.id}`).catch(
      () => null,
    );
    if (details?.members.some((m) => m.user_id === state.me)) mine.add(r.id);
  }
  state.rooms = new Map(rooms.map((r) => [r.id, { room: r, member: mine.has(r.id) }]));
  const list = $('rooms');
  list.replaceChildren(
    ...rooms.map((r) => {
      const li = el(
        'li',
        { className: r.id === state.current ? 'active' : '' },
        el('span', {}, r.name),
        el('span', { className: 'lock' }, r.private ? '🔒' : mine.has(r.id) ? '' : 'join'),
      );
      li.dataset.roomId = r.id;
      li.onclick = () => void openRoom(r.id);
      return li;
    }),
  );
}

listen('create-room', 'submit', async (e) => {
  e.preventDefault();
  const name = $<HTMLInputElement>('new-room-name').value.trim();
  const priv = $<HTMLInputElement>('new-room-private').checked;
  try {
    const { room } = await state.client!.createRoom({ name, private: priv });
    $<HTMLInputElement>('new-room-name').value = '';
    await refreshRooms();
    await openRoom(room.id);
  } catch (err) {
    showError(err);
  }
});

async function openRoom(roomId: string): Promise<void> {
  state.current = roomId;
  state.messages.clear();
  state.typing.clear();
  state.oldestSeq = Infinity;
  const r = state.rooms.get(roomId);
  $('room-title').textContent = r ? `${r.room.name}${r.room.private ? ' 🔒' : ''}` : roomId;
  for (const li of Array.from($('rooms').children))
    li.classList.toggle('active', (li as HTMLElement).dataset.roomId === roomId);
  const msgs = $('messages');
  msgs.replaceChildren($('older'));
  const member = r?.member ?? false;
  $('join-room').classList.toggle('hidden', member);
  $('leave-room').classList.toggle('hidden', !member);
  $('composer').classList.toggle('hidden', !member);
  renderTyping();
  if (!member) {
    $('member-list').replaceChildren();
    $('modlog').replaceChildren();
    return;
  }
  await loadMembers();
  const { messages } = await state.client!.getHistory(roomId, { limit: 30 });
  for (const m of messages) {
    state.messages.set(m.id, m);
    renderMessage(m);
  }
  $('older').classList.toggle('hidden', messages.length < 30);
  void loadModLog();
}

listen('join-room', 'click', async () => {
  if (!state.current) return;
  try {
    await state.client!.joinRoom(state.current);
    await refreshRooms();
    await openRoom(state.current);
  } catch (err) {
    showError(err);
  }
});

listen('leave-room', 'click', async () => {
  if (!state.current) return;
  await state.client!.leaveRoom(state.current).catch(showError);
});

listen('older', 'click', async () => {
  if (!state.current || !Number.isFinite(state.oldestSeq)) return;
  const { messages } = await state.client!.getHistory(state.current, { limit: 30, before: state.oldestSeq });
  for (const m of [...messages].reverse()) {
    state.messages.set(m.id, m);
    renderMessage(m, true);
  }
  $('older').classList.toggle('hidden', messages.length < 30);
});

// ----------------------------------------------------------- messages ----

function myRole(): Role | undefined {
  return state.members.get(state.me);
}

function renderMessage(m: WireMessage, prepend = false): void {
  const container = $('messages');
  state.oldestSeq = Math.min(state.oldestSeq, m.seq);
  const node = el('div', { className: `msg${m.deleted ? ' deleted' : ''}` });
  node.dataset.id = m.id;
  node.dataset.seq = String(m.seq);
  const actions = el('span', { className: 'actions' });
  const mine = m.user_id === state.me;
  const canModerate = RANK[myRole() ?? 'member'] >= RANK.moderator;
  if (!m.deleted) {
    for (const r of REACTIONS) {
      const b = el('button', { className: 'link', textContent: r, title: `react ${r}` });
      b.onclick = () => void toggleReaction(m.id, r);
      actions.append(b);
    }
    if (mine) {
      const edit = el('button', { className: 'link edit', textContent: 'edit' });
      edit.onclick = () => void editMessage(m);
      actions.append(edit);
    }
    if (mine || canModerate) {
      const del = el('button', { className: 'link delete', textContent: 'delete' });
      del.onclick = () => void state.client!.deleteMessage(m.room_id, m.id).catch(showError);
      actions.append(del);
    }
  }
  const reactions = el('div', { className: 'reactions' });
  for (const [emoji, users] of Object.entries(m.reactions)) {
    const b = el('button', {
      className: `reaction${users.includes(state.me) ? ' mine' : ''}`,
      textContent: `${emoji} ${users.length}`,
      title: users.join(', '),
    });
    b.onclick = () => void toggleReaction(m.id, emoji);
    reactions.append(b);
  }
  node.append(
    actions,
    el('span', { className: 'who' }, m.user_id),
    el('span', { className: 'when' }, new Date(m.timestamp).toLocaleTimeString()),
    el('div', { className: 'text' }, m.deleted ? 'message deleted' : m.content),
  );
  if (m.edited_at && !m.deleted) node.append(el('span', { className: 'edited' }, '(edited)'));
  node.append(reactions);
  const existing = container.querySelector(`[data-id="${m.id}"]`);
  if (existing) {
    existing.replaceWith(node);
    return;
  }
  if (prepend) $('older').after(node);
  else {
    container.append(node);
    container.scrollTop = container.scrollHeight;
  }
}

function patchMessage(roomId: string, messageId: string, f: (m: WireMessage) => WireMessage): void {
  if (roomId !== state.current) return;
  const m = state.messages.get(messageId);
  if (!m) return;
  const next = f(m);
  state.messages.set(messageId, next);
  renderMessage(next);
}

async function toggleReaction(messageId: string, emoji: string): Promise<void> {
  const m = state.messages.get(messageId);
  if (!m || !state.current) return;
  const mine = (m.reactions[emoji] ?? []).includes(state.me);
  try {
    if (mine) await state.client!.removeReaction(state.current, messageId, emoji);
    else await state.client!.addReaction(state.current, messageId, emoji);
  } catch (err) {
    showError(err);
  }
}

async function editMessage(m: WireMessage): Promise<void> {
  const content = prompt('Edit message', m.content);
  if (content === null || content === m.content) return;
  await state.client!.editMessage(m.room_id, m.id, content).catch(showError);
}

listen('composer', 'submit', async (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('message-input');
  const content = input.value;
  if (!content.trim() || !state.current) return;
  input.value = '';
  try {
    await state.client!.sendMessage(state.current, content);
    state.typingSentAt = 0;
  } catch (err) {
    input.value = content;
    showError(err);
  }
});

$('message-input').addEventListener('input', () => {
  if (!state.current) return;
  const now = Date.now();
  if (now - state.typingSentAt > 2000) {
    state.typingSentAt = now;
    void state.client!.startTyping(state.current).catch(() => undefined);
  }
});

function renderTyping(): void {
  const names = [...state.typing.keys()];
  $('typing').textContent =
    names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

// ------------------------------------------------ members, moderation ----

async function loadMembers(): Promise<void> {
  if (!state.current) return;
  const details = await api<WireRoom & { members: WireMember[] }>('GET', `/api/rooms/${state.current}`).catch(
    () => null,
  );
  if (!details) return;
  state.members = new Map(details.members.map((m) => [m.user_id, m.role]));
  const { presence } = await state
    .client!.getPresence({ room_id: state.current })
    .catch(() => ({ presence: [] as WirePresence[] }));
  for (const p of presence) state.presence.set(p.user_id, p);
  $('invite-form').classList.toggle('hidden', RANK[myRole() ?? 'member'] < RANK.admin);
  renderMembers();
}

function renderMembers(): void {
  const mine = RANK[myRole() ?? 'member'];
  const items = [...state.members].map(([userId, role]) => {
    const p = state.presence.get(userId);
    const status = p?.status ?? 'offline';
    const li = el(
      'li',
      {},
      el('span', { className: `dot ${status}`, title: status }),
      el('span', {}, userId),
      el('span', { className: 'role' }, role === 'member' ? '' : role),
      el('span', { className: 'role' }, p?.custom ? `“${p.custom}”` : status === 'offline' ? '' : status),
    );
    li.dataset.userId = userId;
    li.dataset.status = status;
    if (userId !== state.me && mine >= RANK.moderator && mine > RANK[role]) {
      const menu = el('select', { className: 'mod-menu', title: 'moderate' });
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
}

async function moderate(userId: string, action: string): Promise<void> {
  const room = state.current;
  if (!room || !action) return;
  try {
    if (action === 'promote') await state.client!.setRole(room, userId, 'moderator');
    else if (action === 'demote') await state.client!.setRole(room, userId, 'member');
    else {
      await state.client!.moderate({
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

async function loadModLog(): Promise<void> {
  if (!state.current || RANK[myRole() ?? 'member'] < RANK.admin) {
    $('modlog').replaceChildren();
    return;
  }
  const { entries } = await api<{
    entries: Array<{ action: string; moderator_id: string | null; target_id: string; at: string }>;
  }>('GET', `/api/rooms/${state.current}/moderation?limit=20`).catch(() => ({ entries: [] }));
  $('modlog').replaceChildren(
    ...entries
      .reverse()
      .map((e) =>
        el(
          'li',
          {},
          `${new Date(e.at).toLocaleTimeString()} ${e.moderator_id ?? 'server'} ${e.action} ${e.target_id}`,
        ),
      ),
  );
}

listen('invite-form', 'submit', async (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('invite-user');
  if (!state.current) return;
  try {
    await state.client!.invite(state.current, input.value.trim());
    input.value = '';
  } catch (err) {
    showError(err);
  }
});

$('my-status').addEventListener('change', () => {
  const status = $<HTMLSelectElement>('my-status').value as 'online' | 'away' | 'busy';
  void state.client!.setPresence(status).catch(showError);
});

// Resume a session after a page reload.
const saved = sessionStorage.getItem('demo-chat-login');
if (saved) {
  const { username, token } = JSON.parse(saved) as { username: string; token: string };
  state.me = username;
  state.token = token;
  start().catch(() => sessionStorage.removeItem('demo-chat-login'));
}
