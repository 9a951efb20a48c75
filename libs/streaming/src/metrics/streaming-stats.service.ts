import { Injectable } from '@nestjs/common';

/**
 * Rolling counters behind `GET /_/streaming/stats`:
 * messages per second over the last few seconds.
 */
@Injectable()
export class StreamingStatsService {
  private readonly windowSec = 5;
  private readonly buckets = new Array<number>(this.windowSec + 1).fill(0);
  private bucketSec = Math.floor(Date.now() / 1000);
  totalMessages = 0;
  readonly startedAt = new Date();

  private roll(): void {
    const now = Math.floor(Date.now() / 1000);
    const steps = Math.min(now - this.bucketSec, this.buckets.length);
    for (let i = 0; i < steps; i++) {
      this.buckets.shift();
      this.buckets.push(0);
    }
    this.bucketSec = now;
  }

  recordMessage(): void {
    this.roll();
    this.buckets[this.buckets.length - 1]++;
    this.totalMessages++;
  }

  /** Mean messages per second over the last complete seconds. */
  messagesPerSecond(): number {
    this.roll();
    const complete = this.buckets.slice(0, -1);
    return Math.round((complete.reduce((a, b) => a + b, 0) / complete.length) * 100) / 100;
  }
}
