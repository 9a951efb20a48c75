import type { Broker, TopicHandler } from '../interfaces';
import { TopicTable } from './topic-table';

/** A broker whose subscribe/unsubscribe take `delayMs` and are recorded in the order they complete. */
function slowBroker(delayMs: (op: string) => number) {
  const log: string[] = [];
  const subscribed = new Map<string, TopicHandler>();
  const broker = {
    distributed: true,
    subscribe: async (topic: string, handler: TopicHandler) => {
      await new Promise((r) => setTimeout(r, delayMs('sub')));
      subscribed.set(topic, handler);
      log.push(`sub ${topic}`);
    },
    unsubscribe: async (topic: string) => {
      await new Promise((r) => setTimeout(r, delayMs('unsub')));
      subscribed.delete(topic);
      log.push(`unsub ${topic}`);
    },
  } as unknown as Broker;
  return { broker, log, subscribed };
}

describe('TopicTable', () => {
  it('subscribes on the first reference and unsubscribes after the last, once each', async () => {
    const { broker, log } = slowBroker(() => 1);
    const table = new TopicTable(broker);
    const h = jest.fn();
    await Promise.all([table.retain('room:a', h), table.retain('room:a', h), table.retain('room:a', h)]);
    expect(table.held()).toEqual(['room:a']);
    await table.release('room:a', 'room:a');
    expect(table.held()).toEqual(['room:a']);
    await table.release('room:a');
    expect(table.held()).toEqual([]);
    expect(log).toEqual(['sub room:a', 'unsub room:a']);
  });

  it('a leave racing a join never leaves the topic unsubscribed while it is referenced', async () => {
    // Unsubscribe is slow, subscribe fast: without per-topic ordering the subscribe of the
    // join would land first and the late unsubscribe of the leave would undo it.
    const { broker, subscribed } = slowBroker((op) => (op === 'unsub' ? 30 : 1));
    const table = new TopicTable(broker);
    const h = jest.fn();
    await table.retain('room:b', h);
    const leave = table.release('room:b');
    const join = table.retain('room:b', h);
    await Promise.all([leave, join]);
    expect(subscribed.has('room:b')).toBe(true);
    expect(table.held()).toEqual(['room:b']);
  });

  it('keeps the first handler, filters held topics by prefix, and logs (not throws) a failed unsubscribe', async () => {
    const { broker, subscribed } = slowBroker(() => 0);
    const table = new TopicTable(broker);
    const first = jest.fn();
    await table.retain('chan:x', first);
    await table.retain('chan:x', jest.fn());
    await table.retain('user:u', first);
    subscribed.get('chan:x')!('payload', 'chan:x');
    expect(first).toHaveBeenCalledWith('payload', 'chan:x');
    expect(table.held('chan:')).toEqual(['chan:x']);
    (broker as { unsubscribe: unknown }).unsubscribe = () => Promise.reject(new Error('down'));
    await expect(table.release('user:u')).resolves.toBeUndefined();
  });

  it('rejects the retain whose subscription the broker refuses', async () => {
    const { broker } = slowBroker(() => 0);
    (broker as { subscribe: unknown }).subscribe = () => Promise.reject(new Error('refused'));
    const table = new TopicTable(broker);
    await expect(table.retain('room:c', jest.fn())).rejects.toThrow('refused');
    expect(table.held()).toEqual([]);
  });
});
