// The client processes (lib/client-worker.mjs) holding the receiving connections,
// and the helpers that spread connections over them.
import { fork } from 'node:child_process';
import path from 'node:path';
import { benchDir } from './servers.mjs';

/** Ask each worker process to close ({op: 'close'}) and wait for it to exit; killed after 5 s. */
export function stopWorkers(procs) {
  return Promise.all(
    procs.map(
      (w) =>
        new Promise((r) => {
          if (w.exitCode !== null || w.signalCode !== null) return r();
          w.once('exit', r);
          w.send({ op: 'close' });
          setTimeout(() => w.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
}

export class Workers {
  constructor(count) {
    this.procs = [];
    this.handlers = [];
    for (let i = 0; i < count; i++) {
      const w = fork(path.join(benchDir, 'lib/client-worker.mjs'), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const idx = i;
      w.on('message', (m) => {
        if (m.op === 'fatal') console.error(`client worker ${idx}: ${m.message}`);
        for (const h of [...this.handlers]) h(idx, m);
      });
      this.procs.push(w);
    }
  }

  get pids() {
    return this.procs.map((p) => p.pid);
  }

  /** Send each worker its command; resolve with every worker's reply of type `replyOp`. */
  all(cmds, replyOp, timeoutMs = 120000) {
    return new Promise((resolve, reject) => {
      const replies = new Array(this.procs.length);
      let left = this.procs.length;
      const t = setTimeout(() => {
        this.off(h);
        reject(new Error(`client workers did not answer ${replyOp} within ${timeoutMs} ms`));
      }, timeoutMs);
      const h = (idx, m) => {
        if (m.op !== replyOp || replies[idx] !== undefined) return;
        replies[idx] = m;
        if (--left === 0) {
          clearTimeout(t);
          this.off(h);
          resolve(replies);
        }
      };
      this.handlers.push(h);
      this.procs.forEach((w, i) => w.send(typeof cmds === 'function' ? cmds(i) : cmds));
    });
  }

  on(h) {
    this.handlers.push(h);
  }

  off(h) {
    this.handlers = this.handlers.filter((x) => x !== h);
  }

  /** How many of `n` connections worker `i` holds, and the global index of its first one. */
  share(n, i) {
    const procs = this.procs.length;
    const count = Math.floor(n / procs) + (i < n % procs ? 1 : 0);
    let offset = 0;
    for (let k = 0; k < i; k++) offset += Math.floor(n / procs) + (k < n % procs ? 1 : 0);
    return { count, offset };
  }

  /**
   * Open `n` connections spread over the workers (worker i connects to `port(i)`), `tokens[g]`
   * for the connection with global index g. Resolves with {connected, failed, firstError, ms}.
   */
  async connect({ kind, port, n, tokens = null, concurrency, timeoutMs = 600000 }) {
    const t0 = Date.now();
    const replies = await this.all(
      (i) => {
        const { count, offset } = this.share(n, i);
        return {
          op: 'connect',
          kind,
          port: typeof port === 'function' ? port(i) : port,
          count,
          tokens: tokens?.slice(offset, offset + count),
          concurrency,
        };
      },
      'connected',
      timeoutMs,
    );
    return {
      connected: replies.reduce((a, c) => a + c.ok, 0),
      failed: replies.reduce((a, c) => a + c.failed, 0),
      firstError: replies.find((c) => c.firstError)?.firstError,
      ms: Date.now() - t0,
    };
  }

  /**
   * Every connection joins a room or subscribes to a channel: `targets[(offset + i) % targets.length]`
   * for the i-th connection of a worker whose share starts at global index `offset`.
   * Resolves with {ok, failed, firstError, perTarget: {target: joined}, ms}.
   */
  async join({ request, targets, n, timeoutMs = 600000 }) {
    const t0 = Date.now();
    const replies = await this.all(
      (i) => ({ op: 'join', request, targets, offset: this.share(n, i).offset }),
      'joined',
      timeoutMs,
    );
    const perTarget = {};
    for (const r of replies)
      for (const [k, v] of Object.entries(r.perTarget)) perTarget[k] = (perTarget[k] ?? 0) + v;
    return {
      ok: replies.reduce((a, c) => a + c.ok, 0),
      failed: replies.reduce((a, c) => a + c.failed, 0),
      firstError: replies.find((c) => c.firstError)?.firstError,
      perTarget,
      ms: Date.now() - t0,
    };
  }

  async close() {
    await stopWorkers(this.procs);
  }
}
