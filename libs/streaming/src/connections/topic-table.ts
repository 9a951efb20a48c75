import { StreamingLogger } from '../common/streaming-logger';
import { Injectable } from '@nestjs/common';
import type { Broker, TopicHandler } from '../interfaces';
import { InjectBroker } from '../streaming.constants';

/** One backend topic on this node: held while `refs` > 0; changes run one at a time. */
interface TopicState {
  refs: number;
  active: boolean;
  handler: TopicHandler;
  op: Promise<void>;
}

const noop = (): void => undefined;

/**
 * The node's backend topic subscriptions, for rooms, users and channels
 * alike: one table, reference counted (the broker subscription is made on
 * the first reference and dropped after the last) and serialized per topic
 * (changes to one topic are applied in the order they were asked, so a leave
 * racing a join can never leave the node unsubscribed from a room it serves).
 */
@Injectable()
export class TopicTable {
  private readonly logger = new StreamingLogger('streaming.manager.bus');
  private readonly topics = new Map<string, TopicState>();

  constructor(@InjectBroker() private readonly broker: Broker) {}

  /**
   * Add `delta` references to `topic` (0: just wait for changes in flight)
   * and bring the broker subscription in line. `handler` receives the topic's
   * payloads; the one given when the topic was first held is kept. Settles
   * when this change and every earlier one to the topic are applied; rejects
   * when the broker refuses the subscription.
   */
  retain(topic: string, handler: TopicHandler, delta = 1): Promise<void> {
    let t = this.topics.get(topic);
    if (!t) this.topics.set(topic, (t = { refs: 0, active: false, handler, op: Promise.resolve() }));
    const state = t;
    state.refs += delta;
    const run = state.op.then(async () => {
      if (state.refs > 0 && !state.active) {
        await this.broker.subscribe(topic, state.handler);
        state.active = true;
      } else if (state.refs <= 0 && state.active) {
        state.active = false;
        await this.broker.unsubscribe(topic);
      }
    });
    const settled: Promise<void> = run.then(noop, noop).then(() => {
      if (state.op === settled && state.refs <= 0 && !state.active && this.topics.get(topic) === state) {
        this.topics.delete(topic);
      }
    });
    state.op = settled;
    return run;
  }

  /** Drop one reference to each topic; failures are logged, never thrown. */
  async release(...topics: string[]): Promise<void> {
    const results = await Promise.allSettled(topics.map((t) => this.retain(t, noop, -1)));
    for (const r of results) {
      if (r.status === 'rejected') this.logger.warn(`unsubscribe failed: ${String(r.reason)}`);
    }
  }

  /** Topics subscribed at the broker now, optionally only those starting with `prefix`. */
  held(prefix = ''): string[] {
    return [...this.topics.entries()]
      .filter(([topic, t]) => t.active && topic.startsWith(prefix))
      .map(([topic]) => topic);
  }
}
