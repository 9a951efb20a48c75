/**
 * The admin console page: one static HTML document with its style and
 * script inline (no build step, no dependency), served by
 * `AdminPageController`. It holds no data: it asks for a token (or takes
 * `#token=` from its URL, then drops it from the address bar), and polls
 * the JSON API next to it (`./api/...`) with `Authorization: Bearer`.
 * Everything it shows from the server is set as text, never as HTML.
 */
export const ADMIN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nest-streaming admin</title>
<style>
:root { color-scheme: light dark; --bg: #f5f6f8; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e3e6eb;
  --accent: #3b6fe0; --danger: #c9372c; --ok: #1f8a4c; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
@media (prefers-color-scheme: dark) { :root { --bg: #12151b; --card: #1b2029; --fg: #e6e9ef; --muted: #98a2b3;
  --line: #2b323e; --accent: #7aa2ff; --danger: #ff6b5e; --ok: #4cc98a; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font-size: 14px; }
header { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  padding: 10px 16px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; }
header .muted { color: var(--muted); }
.spacer { flex: 1; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); margin-right: 6px; }
.dot.live { background: var(--ok); }
main { padding: 16px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px; min-width: 0; }
.card h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 10px; }
.wide { grid-column: 1 / -1; }
.totals { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); }
.total { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.total b { display: block; font-size: 24px; font-variant-numeric: tabular-nums; }
.total span { color: var(--muted); font-size: 12px; }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; }
tr.self td:first-child::after { content: " (this node)"; color: var(--muted); }
.empty { color: var(--muted); padding: 8px 0; }
svg { width: 100%; height: 140px; display: block; }
svg .area { fill: color-mix(in srgb, var(--accent) 18%, transparent); }
svg .base { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
svg .line { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
.legend { color: var(--muted); font-size: 12px; display: flex; justify-content: space-between; }
input, button { font: inherit; }
input[type=search], input[type=password] { padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--fg); width: 100%; max-width: 320px; }
button { padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); cursor: pointer; }
button.danger { border-color: var(--danger); color: var(--danger); }
button.danger.armed { background: var(--danger); color: #fff; }
ol.log { list-style: none; margin: 0; padding: 0; max-height: 360px; overflow-y: auto; }
ol.log li { padding: 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
ol.log .when { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; background: var(--bg); border: 1px solid var(--line); font-size: 12px; }
#signin { max-width: 420px; margin: 12vh auto; }
#signin p { color: var(--danger); min-height: 1.2em; }
#toasts { position: fixed; right: 16px; bottom: 16px; display: grid; gap: 8px; z-index: 3; max-width: calc(100vw - 32px); }
.toast { background: var(--fg); color: var(--bg); padding: 8px 12px; border-radius: 8px; box-shadow: 0 4px 16px #0003; }
.toast.error { background: var(--danger); color: #fff; }
details summary { cursor: pointer; color: var(--muted); margin: 12px 0 6px; }
.toolbar { display: flex; gap: 8px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
[hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>nest-streaming admin</h1>
  <span class="muted" id="where"></span>
  <span class="spacer"></span>
  <span class="muted"><span class="dot" id="live-dot"></span><span id="status">connecting</span></span>
  <button type="button" id="signout" hidden>Sign out</button>
</header>
<section class="card" id="signin" hidden>
  <h2>Sign in</h2>
  <form id="signin-form">
    <label for="token-input">A token with the admin role</label>
    <div class="toolbar"><input type="password" id="token-input" autocomplete="off" required><button type="submit">Open</button></div>
    <p id="signin-error" role="alert"></p>
  </form>
</section>
<main id="console" hidden>
  <section class="totals wide" aria-label="Cluster totals">
    <div class="total"><b id="t-nodes">-</b><span>nodes</span></div>
    <div class="total"><b id="t-connections">-</b><span>connections</span></div>
    <div class="total"><b id="t-rooms">-</b><span>rooms</span></div>
    <div class="total"><b id="t-rate">-</b><span>messages / s</span></div>
  </section>
  <section class="card wide" aria-label="Messages per second">
    <h2>Messages per second</h2>
    <svg id="graph" viewBox="0 0 600 100" preserveAspectRatio="none" role="img" aria-label="messages per second, last two minutes">
      <line class="base" x1="0" y1="99.5" x2="600" y2="99.5"></line><line class="base" x1="0" y1="50" x2="600" y2="50"></line>
      <path class="area" id="graph-area" d=""></path><path class="line" id="graph-line" d=""></path>
    </svg>
    <div class="legend"><span>last 2 minutes, every second</span><span>scale <b id="scale">1</b> / s · peak <b id="peak">0</b> / s</span></div>
  </section>
  <section class="card" aria-label="Nodes">
    <h2>Nodes</h2>
    <div class="table"><table id="nodes"><thead><tr><th>Node</th><th class="num">Connections</th><th class="num">Msg/s</th><th class="num">Messages</th><th class="num">Heartbeat</th><th>Region</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section class="card" aria-label="Rooms">
    <h2>Rooms <span class="muted" id="rooms-count"></span></h2>
    <div class="table"><table id="rooms"><thead><tr><th>Room</th><th class="num">Members</th><th class="num">Here</th><th class="num">Msg/s</th><th class="num">Last seq</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section class="card wide" aria-label="Connections">
    <h2>Connections</h2>
    <div class="toolbar"><input type="search" id="user-filter" placeholder="Filter by user id" aria-label="Filter by user id"></div>
    <div class="table"><table id="users"><thead><tr><th>User</th><th>Nodes</th><th class="num">Here</th><th></th></tr></thead><tbody></tbody></table></div>
    <details id="local-details"><summary>Connections on this node (<span id="local-count">0</span>)</summary>
      <div class="table"><table id="local"><thead><tr><th>Id</th><th>User</th><th>Transport</th><th>Since</th><th class="num">Rooms</th><th class="num">Queued</th></tr></thead><tbody></tbody></table></div>
    </details>
  </section>
  <section class="card" aria-label="Moderation">
    <h2>Recent moderation</h2>
    <ol class="log" id="moderation"></ol>
  </section>
</main>
<div id="toasts" aria-live="polite"></div>
<script>
(function () {
  'use strict';
  var KEY = 'nest-streaming-admin-token';
  var base = location.pathname.replace(/\\/+$/, '') + '/api';
  var token = null;
  var points = [];
  var timers = [];
  var filter = '';
  var $ = function (id) { return document.getElementById(id); };

  var hash = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (hash) {
    token = decodeURIComponent(hash[1]);
    try { sessionStorage.setItem(KEY, token); } catch (e) {}
    history.replaceState(null, '', location.pathname + location.search);
  } else {
    try { token = sessionStorage.getItem(KEY); } catch (e) {}
  }

  function el(tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (cls) n.className = cls;
    return n;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = c instanceof Node ? c : el('td', c === null || c === undefined ? '-' : c);
      if (!(c instanceof Node) && typeof c === 'number') td.className = 'num';
      tr.appendChild(td.tagName === 'TD' ? td : wrap(td));
    });
    return tr;
  }
  function wrap(node) { var td = el('td'); td.appendChild(node); return td; }
  function fill(tbody, rows, emptyText, cols) {
    tbody.replaceChildren.apply(tbody, rows);
    if (!rows.length) { var td = el('td', emptyText, 'empty'); td.colSpan = cols; var tr = el('tr'); tr.appendChild(td); tbody.appendChild(tr); }
  }
  function ago(iso) {
    if (!iso) return '-';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
  }
  function toast(text, error) {
    var t = el('div', text, 'toast' + (error ? ' error' : ''));
    t.setAttribute('role', error ? 'alert' : 'status');
    $('toasts').appendChild(t);
    setTimeout(function () { t.remove(); }, 5000);
  }
  function setStatus(text, live) { $('status').textContent = text; $('live-dot').className = 'dot' + (live ? ' live' : ''); }

  function api(path, init) {
    init = init || {};
    var headers = { Accept: 'application/json' };
    if (init.body) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(base + path, { method: init.method || 'GET', body: init.body, headers: headers, credentials: 'same-origin' })
      .then(function (res) {
        return res.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) {}
          if (res.status === 401 || res.status === 403) { signIn(body && body.message ? body.message : 'not allowed'); throw new Error('auth'); }
          if (!res.ok) throw new Error(body && body.message ? body.message : 'HTTP ' + res.status);
          return body;
        });
      });
  }

  function signIn(message) {
    stop();
    $('console').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = token ? message : '';
    setStatus('signed out', false);
  }
  function stop() { timers.forEach(clearInterval); timers = []; }
  function start() {
    stop();
    $('signin').hidden = true;
    $('console').hidden = false;
    $('signout').hidden = !token;
    tick(overview); tick(rooms); tick(connections); tick(moderation);
    timers.push(setInterval(function () { tick(overview); }, 1000));
    timers.push(setInterval(function () { tick(rooms); tick(connections); tick(moderation); }, 3000));
  }
  function tick(fn) {
    fn().catch(function (e) { if (e.message !== 'auth') setStatus('error: ' + e.message, false); });
  }

  function overview() {
    return api('/overview').then(function (o) {
      setStatus('live', true);
      $('where').textContent = o.node_id + ' · ' + o.backend;
      $('t-nodes').textContent = o.totals.nodes;
      $('t-connections').textContent = o.totals.connections;
      $('t-rooms').textContent = o.totals.rooms;
      $('t-rate').textContent = o.totals.messages_per_second;
      points.push(o.totals.messages_per_second);
      if (points.length > 120) points.shift();
      drawGraph();
      fill($('nodes').tBodies[0], o.nodes.map(function (n) {
        var tr = row([n.node_id, n.connections, n.messages_per_second, n.total_messages,
          n.heartbeat_age_s === null ? '-' : n.heartbeat_age_s + ' s', n.region]);
        if (n.self) tr.className = 'self';
        tr.dataset.node = n.node_id;
        return tr;
      }), 'no live node', 6);
    });
  }
  /** 1, 2 or 5 times a power of ten, at least v: the top of the graph's scale. */
  function nice(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function drawGraph() {
    var peak = Math.max.apply(null, points.concat([0]));
    var top = nice(Math.max(1, peak) * 1.1);
    var step = 600 / 119;
    var start = 120 - points.length;
    // One reading is drawn as a short flat line, so the graph never looks empty.
    var shown = points.length === 1 ? [points[0], points[0]] : points;
    if (points.length === 1) start = 119 - 1;
    var d = shown.map(function (v, i) { return (i ? 'L' : 'M') + ((start + i) * step).toFixed(1) + ' ' + (100 - (v / top) * 100).toFixed(1); }).join(' ');
    $('graph-line').setAttribute('d', d);
    $('graph-area').setAttribute('d', shown.length ? d + ' L600 100 L' + (start * step).toFixed(1) + ' 100 Z' : '');
    $('peak').textContent = peak;
    $('scale').textContent = top;
  }
  function rooms() {
    return api('/rooms?limit=50').then(function (r) {
      $('rooms-count').textContent = r.total === r.rooms.length ? '(' + r.total + ')' : '(' + r.rooms.length + ' of ' + r.total + ')';
      fill($('rooms').tBodies[0], r.rooms.map(function (room) {
        var name = el('td');
        name.appendChild(el('span', room.name || room.id));
        if (room.kind === 'direct') { name.appendChild(document.createTextNode(' ')); name.appendChild(el('span', 'DM', 'badge')); }
        else if (room.private) { name.appendChild(document.createTextNode(' ')); name.appendChild(el('span', 'private', 'badge')); }
        name.title = room.id;
        var tr = row([name, room.members, room.local_connections, room.messages_per_second, room.last_seq]);
        tr.dataset.room = room.id;
        return tr;
      }), 'no rooms', 5);
    });
  }
  function connections() {
    return api('/connections' + (filter ? '?user=' + encodeURIComponent(filter) : '')).then(function (c) {
      fill($('users').tBodies[0], c.users.map(function (u) {
        var b = el('button', 'Disconnect', 'danger disconnect');
        b.type = 'button';
        b.setAttribute('aria-label', 'Disconnect ' + u.user_id);
        b.addEventListener('click', function () { disconnect(u.user_id, b); });
        var tr = row([u.user_id, u.nodes.join(', '), u.local_connections, b]);
        tr.dataset.user = u.user_id;
        return tr;
      }), filter ? 'nobody called ' + filter + ' is connected' : 'nobody is connected', 4);
      $('local-count').textContent = c.local.length + (c.truncated ? '+' : '');
      fill($('local').tBodies[0], c.local.map(function (l) {
        return row([l.id, l.name ? l.user_id + ' (' + l.name + ')' : l.user_id, l.transport + ' · ' + l.codec, ago(l.connected_at), l.rooms, l.queued]);
      }), 'none', 6);
    });
  }
  function disconnect(userId, button) {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = 'Confirm';
      setTimeout(function () { button.classList.remove('armed'); button.textContent = 'Disconnect'; }, 4000);
      return;
    }
    button.disabled = true;
    api('/users/' + encodeURIComponent(userId) + '/disconnect', { method: 'POST', body: JSON.stringify({ reason: 'disconnected by an administrator' }) })
      .then(function (r) {
        toast('Disconnected ' + userId + (r.disconnected === null ? '' : ': ' + r.disconnected + ' connection' + (r.disconnected === 1 ? '' : 's') + ' closed'));
        tick(connections);
      })
      .catch(function (e) { if (e.message !== 'auth') toast('Could not disconnect ' + userId + ': ' + e.message, true); button.disabled = false; });
  }
  function moderation() {
    return api('/moderation').then(function (m) {
      var list = $('moderation');
      list.replaceChildren();
      if (!m.actions.length) { list.appendChild(el('li', 'no moderation since this node started', 'empty')); return; }
      m.actions.forEach(function (a) {
        var li = el('li');
        li.appendChild(el('b', a.action));
        li.appendChild(document.createTextNode(' ' + a.target_id + ' in ' + a.room_id + ' by ' + (a.moderator_id || 'the server') +
          (a.duration_s ? ' for ' + a.duration_s + ' s' : '') + (a.role ? ' as ' + a.role : '') + (a.reason ? ': ' + a.reason : '')));
        li.appendChild(el('div', ago(a.at), 'when'));
        list.appendChild(li);
      });
    });
  }

  $('signin-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token-input').value.trim();
    try { sessionStorage.setItem(KEY, token); } catch (err) {}
    $('token-input').value = '';
    start();
  });
  $('signout').addEventListener('click', function () {
    token = null;
    try { sessionStorage.removeItem(KEY); } catch (e) {}
    signIn('');
  });
  var debounce = null;
  $('user-filter').addEventListener('input', function (e) {
    clearTimeout(debounce);
    debounce = setTimeout(function () { filter = e.target.value.trim(); tick(connections); }, 250);
  });
  start();
})();
</script>
</body>
</html>
`;
