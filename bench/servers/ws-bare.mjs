// (a) The bare `ws` broadcast loop: the floor we compare against.
// Same request/event shapes as nest-streaming (join_room, send_message ->
// `message` to every member + ack; subscribe, publish -> `channel_message` to
// every subscriber + ack), any number of rooms and channels, no auth, no
// history, no batching, no flow control: JSON.stringify once per broadcast,
// then ws.send(sameString) to each member.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 3000);
const server = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
/** room id -> { seq, members: Set<WebSocket> } */
const rooms = new Map();
/** channel name -> Set<WebSocket> */
const channels = new Map();

function room(id) {
  let r = rooms.get(id);
  if (!r) rooms.set(id, (r = { seq: 0, members: new Set() }));
  return r;
}

function channel(name) {
  let c = channels.get(name);
  if (!c) channels.set(name, (c = new Set()));
  return c;
}

wss.on('connection', (ws) => {
  const joined = new Set();
  const subscribed = new Set();
  ws.send('{"type":"connected","data":{}}');
  ws.on('message', (raw) => {
    let env;
    try {
      env = JSON.parse(raw.toString());
    } catch {
      ws.send('{"type":"error","data":{"code":"invalid_message","message":"bad json"}}');
      return;
    }
    const d = env.data ?? {};
    if (env.type === 'join_room') {
      room(d.room_id).members.add(ws);
      joined.add(d.room_id);
      ws.send(JSON.stringify({ type: 'ack', id: env.id, data: { room_id: d.room_id } }));
    } else if (env.type === 'send_message') {
      const r = room(d.room_id);
      const message = {
        id: randomUUID(),
        seq: ++r.seq,
        room_id: d.room_id,
        user_id: 'sender',
        content: d.content,
        metadata: d.metadata ?? {},
        timestamp: new Date().toISOString(),
        reactions: {},
      };
      const frame = JSON.stringify({ type: 'message', data: message });
      for (const member of r.members) member.send(frame);
      ws.send(
        JSON.stringify({ type: 'ack', id: env.id, data: { message_id: message.id, seq: message.seq } }),
      );
    } else if (env.type === 'subscribe') {
      channel(d.channel).add(ws);
      subscribed.add(d.channel);
      ws.send(JSON.stringify({ type: 'ack', id: env.id, data: { channel: d.channel } }));
    } else if (env.type === 'publish') {
      const event = {
        channel: d.channel,
        data: d.data ?? {},
        metadata: d.metadata ?? {},
        publisher_id: 'sender',
        timestamp: new Date().toISOString(),
      };
      const frame = JSON.stringify({ type: 'channel_message', data: event });
      for (const member of channel(d.channel)) member.send(frame);
      ws.send(
        JSON.stringify({ type: 'ack', id: env.id, data: { channel: d.channel, timestamp: event.timestamp } }),
      );
    }
  });
  ws.on('close', () => {
    for (const id of joined) rooms.get(id)?.members.delete(ws);
    for (const name of subscribed) channels.get(name)?.delete(ws);
  });
});

server.listen(port, '127.0.0.1', () => console.log(`ws-bare listening on ${port}`));
