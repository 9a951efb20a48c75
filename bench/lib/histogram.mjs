// Log-bucketed latency histogram (about 2 % resolution), mergeable across processes.
const FACTOR = Math.log(1.02);
const BUCKETS = 1200; // 1.02^1200 µs ≈ 20 000 s: enough for any run

export class Histogram {
  constructor() {
    this.buckets = new Float64Array(BUCKETS);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  /** Record one latency in microseconds. */
  record(us) {
    const v = us < 1 ? 1 : us;
    let b = Math.floor(Math.log(v) / FACTOR);
    if (b >= BUCKETS) b = BUCKETS - 1;
    this.buckets[b]++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Record `n` samples of the same latency (one frame carrying n deliveries shares one arrival time). */
  recordN(us, n) {
    const v = us < 1 ? 1 : us;
    let b = Math.floor(Math.log(v) / FACTOR);
    if (b >= BUCKETS) b = BUCKETS - 1;
    this.buckets[b] += n;
    this.count += n;
    this.sum += v * n;
    if (v > this.max) this.max = v;
  }

  toJSON() {
    const nz = [];
    for (let i = 0; i < BUCKETS; i++) if (this.buckets[i] > 0) nz.push([i, this.buckets[i]]);
    return { nz, count: this.count, sum: this.sum, max: this.max };
  }

  static fromJSON(j) {
    const h = new Histogram();
    for (const [i, n] of j.nz) h.buckets[i] = n;
    h.count = j.count;
    h.sum = j.sum;
    h.max = j.max;
    return h;
  }

  merge(other) {
    for (let i = 0; i < BUCKETS; i++) this.buckets[i] += other.buckets[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
    return this;
  }

  /** Percentile (0..100) in microseconds: geometric middle of the bucket holding it. */
  percentile(p) {
    if (this.count === 0) return null;
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.buckets[i];
      if (seen >= target) return Math.min(Math.exp((i + 0.5) * FACTOR), this.max);
    }
    return this.max;
  }

  summary() {
    return {
      count: this.count,
      mean_us: this.count ? this.sum / this.count : null,
      p50_us: this.percentile(50),
      p90_us: this.percentile(90),
      p99_us: this.percentile(99),
      max_us: this.max,
    };
  }
}
