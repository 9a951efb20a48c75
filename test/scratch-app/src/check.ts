/**
 * A client of the app, using @nest-streaming/client over the `ws` package:
 * alice creates a room, bob joins it and sends a message, both receive it and
 * the echo bot's reply, then bob calls the app's own `POST /announce/:room`
 * and both receive the announcement. Prints what happened; exits non-zero on
 * any failure.
 *
 *   APP_URL=http://127.0.0.1:3000 JWT_SECRET=... node dist/check.js
 */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { StreamingClient, type WireMessage } from '@nest-streaming/client';

const APP_URL = process.env.APP_URL ?? 'http://127.0.0.1:3000';
const JWT_SECRET = process.env.JWT_SECRET ?? '';

/** An HS256 JWT for `sub`, valid for five minutes (what the server's JWT authenticator expects). */
function token(sub: string): string {
  const part = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 300 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}

/** A connected client, and a way to wait for a message it received (before or after the call). */
async function connect(user: string) {
  const client = new StreamingClient({ url: APP_URL, token: token(user), WebSocket, ackTimeoutMs: 5000 });
  const received: WireMessage[] = [];
  const waiting = new Set<() => void>();
  client.on('message', (m) => {
    received.push(m);
    for (const check of waiting) check();
  });
  const message = (what: string, match: (m: WireMessage) => boolean): Promise<WireMessage> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = received.find(match);
        if (!found) return;
        waiting.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiting.delete(check);
        reject(new Error(`${user} did not receive ${what} within 5 s`));
      }, 5000);
      waiting.add(check);
      check();
    });
  const { user_id } = await client.connect();
  console.log(`${user} connected as ${user_id}`);
  return { client, message };
}

async function main(): Promise<void> {
  const alice = await connect('alice');
  const bob = await connect('bob');
  try {
    const { room } = await alice.client.createRoom({ name: 'scratch' });
    console.log(`alice created room ${room.id}`);
    await bob.client.joinRoom(room.id);
    console.log(`bob joined room ${room.id}`);

    const sent = await bob.client.sendMessage(room.id, 'hello');
    for (const { message } of [alice, bob]) await message('the message', (m) => m.id === sent.message_id);
    console.log(`alice and bob received message ${sent.message_id}`);

    const isReply = (m: WireMessage): boolean => m.metadata.reply_to === sent.message_id;
    const reply = await bob.message('the echo bot reply', isReply);
    await alice.message('the echo bot reply', isReply);
    console.log(`alice and bob received the reply of ${reply.user_id}: ${reply.content}`);

    const announced = await bob.client.http<{ message_id: string }>('POST', `/announce/${room.id}`, {
      text: 'from the controller',
    });
    const announcement = await alice.message('the announcement', (m) => m.id === announced.message_id);
    await bob.message('the announcement', (m) => m.id === announced.message_id);
    console.log(
      `alice and bob received the announcement of ${announcement.user_id}: ${announcement.content}`,
    );

    console.log(
      `CHECK OK ${JSON.stringify({
        room: room.id,
        sent: sent.message_id,
        reply: { user_id: reply.user_id, content: reply.content },
        announcement: {
          user_id: announcement.user_id,
          content: announcement.content,
          metadata: announcement.metadata,
        },
      })}`,
    );
  } finally {
    alice.client.close();
    bob.client.close();
  }
}

main().catch((err: unknown) => {
  console.error('CHECK FAILED', err);
  process.exit(1);
});
