/**
 * The {@link Broker} contract: pub/sub between nodes, and each room's message
 * log (append with gap-free seqs, paging, updates, trimming).
 */
import { declareHistoryTests } from './broker-history.contract';
import {
  collect,
  eventually,
  sleep,
  uid,
  useSubject,
  type BrokerContractSubject,
  type ContractSubjectFactory,
} from './contract-helpers';
export type { BrokerContractSubject } from './contract-helpers';
import { declareMessageUpdateTests } from './message-updates.contract';
import { declareThreadTests } from './threads.contract';

/** Options of {@link describeBrokerContract}. */
export interface BrokerContractOptions {
  /** How long to wait before asserting that nothing (more) arrived on a topic. Default 50 ms. */
  settleMs?: number;
}

/**
 * Declares the behaviour every {@link Broker} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describeBrokerContract(
  name: string,
  factory: ContractSubjectFactory<BrokerContractSubject>,
  opts: BrokerContractOptions = {},
): void {
  describe(`Broker contract: ${name}`, () => {
    declareBrokerTests(useSubject(factory), opts);
  });
}

/** The broker's tests, in the current `describe`, against `subject()`. */
export function declareBrokerTests(
  subject: () => BrokerContractSubject,
  opts: BrokerContractOptions = {},
): void {
  const settleMs = opts.settleMs ?? 50;

  describe('pub/sub', () => {
    it('delivers every payload exactly once, in publish order, to the topic handler', async () => {
      const broker = subject();
      const topic = uid('topic');
      const box = await collect(broker, topic);
      const sent = ['one', '{"type":"x","data":{"k":"é ✓"}}', 'three'];
      for (const p of sent) await broker.publish(topic, p);

      await eventually(() => expect(box.payloads).toHaveLength(sent.length));
      await sleep(settleMs);
      expect(box.payloads).toEqual(sent);
      expect(box.topics).toEqual(sent.map(() => topic));
    });

    it('does not deliver to the handlers of other topics', async () => {
      const broker = subject();
      const a = uid('topic-a');
      const b = uid('topic-b');
      const boxA = await collect(broker, a);
      const boxB = await collect(broker, b);

      await broker.publish(a, 'for-a');
      await broker.publish(uid('topic-nobody'), 'for-nobody');

      await eventually(() => expect(boxA.payloads).toEqual(['for-a']));
      await sleep(settleMs);
      expect(boxA.payloads).toEqual(['for-a']);
      expect(boxB.payloads).toEqual([]);

      await broker.publish(b, 'for-b');
      await eventually(() => expect(boxB.payloads).toEqual(['for-b']));
      await sleep(settleMs);
      expect(boxA.payloads).toEqual(['for-a']);
    });

    it('unsubscribe stops delivery', async () => {
      const broker = subject();
      const topic = uid('topic');
      const other = uid('topic-other');
      const box = await collect(broker, topic);
      const otherBox = await collect(broker, other);

      await broker.publish(topic, 'before');
      await eventually(() => expect(box.payloads).toEqual(['before']));

      await broker.unsubscribe(topic);
      await broker.publish(topic, 'after');
      await broker.publish(other, 'still-subscribed');

      await eventually(() => expect(otherBox.payloads).toEqual(['still-subscribed']));
      await sleep(settleMs);
      expect(box.payloads).toEqual(['before']);
    });
  });

  describe('history', () => {
    declareHistoryTests(subject, settleMs);
    declareMessageUpdateTests(subject);
    declareThreadTests(subject);
  });
}
