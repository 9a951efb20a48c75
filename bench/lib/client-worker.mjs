// A client process: holds a share of the receiving connections, counts
// deliveries per phase, tracks how far every one of its connections has got
// (for the sender's end-to-end window) and keeps a latency histogram.
// Driven by the orchestrator (bench/run.mjs) over the IPC channel.
import { BenchClient, wsUrl } from './client.mjs';
import { Histogram } from './histogram.mjs';

let clients = [];
// { id, m, track, counts: Uint32Array, done, hist, deliveries, stale, dupes, frames0, timer }
let phase = null;

function onDelivery(ph, seq, latUs) {
  const p = phase;
  if (!p || ph !== p.id) {
    if (p) p.stale++;
    return;
  }
  if (seq < 1 || seq > p.m) return;
  const c = ++p.counts[seq];
  p.deliveries++;
  p.hist.record(latUs);
  // 'count' phases (many rooms): each message reaches only some connections; the
  // orchestrator follows the delivery count, reported on a timer below.
  if (p.track === 'count') return;
  if (c > clients.length) p.dupes++;
  if (seq === p.done + 1 && c >= clients.length) {
    while (p.done < p.m && p.counts[p.done + 1] >= clients.length) p.done++;
    process.send({ op: 'progress', phase: p.id, done: p.done });
  }
}

async function inBatches(items, size, fn) {
  const results = [];
  for (let i = 0; i < items.length; i += size) {
    results.push(...(await Promise.allSettled(items.slice(i, i + size).map((x, k) => fn(x, i + k)))));
  }
  return results;
}

const tally = (values) => {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
};

process.on('message', async (cmd) => {
  try {
    switch (cmd.op) {
      case 'connect': {
        const { kind, port, tokens, count } = cmd;
        const fresh = [];
        for (let i = 0; i < count; i++)
          fresh.push(new BenchClient(kind, wsUrl(kind, port, tokens?.[i]), onDelivery));
        const res = await inBatches(fresh, cmd.concurrency ?? 10, (c) => c.open());
        const failed = res.filter((r) => r.status === 'rejected');
        const opened = fresh.filter((_c, i) => res[i].status === 'fulfilled');
        clients = clients.concat(opened);
        process.send({
          op: 'connected',
          ok: opened.length,
          total: clients.length,
          failed: failed.length,
          firstError: failed[0]?.reason?.message,
        });
        break;
      }
      case 'join': {
        // join_room {room_id} or subscribe {channel}; connection i takes targets[(offset + i) % n].
        const { request, targets, offset = 0 } = cmd;
        const targetOf = (i) => targets[(offset + i) % targets.length];
        const res = await inBatches(clients, 50, (c, i) =>
          request === 'subscribe'
            ? c.request('subscribe', { channel: targetOf(i) })
            : c.request('join_room', { room_id: targetOf(i) }),
        );
        const failed = res.filter((r) => r.status === 'rejected');
        const perTarget = {};
        res.forEach((r, i) => {
          if (r.status === 'fulfilled') perTarget[targetOf(i)] = (perTarget[targetOf(i)] ?? 0) + 1;
        });
        process.send({
          op: 'joined',
          ok: res.length - failed.length,
          failed: failed.length,
          firstError: failed[0]?.reason?.message,
          perTarget,
        });
        break;
      }
      case 'phase': {
        if (phase?.timer) clearInterval(phase.timer);
        phase = {
          id: cmd.id,
          m: cmd.m,
          track: cmd.track ?? 'all',
          counts: new Uint32Array(cmd.m + 2),
          done: 0,
          hist: new Histogram(),
          deliveries: 0,
          stale: 0,
          dupes: 0,
          frames0: clients.reduce((n, c) => n + c.deliveryFrames, 0),
          timer: null,
        };
        if (phase.track === 'count') {
          const p = phase;
          p.timer = setInterval(
            () => process.send({ op: 'progress', phase: p.id, deliveries: p.deliveries }),
            200,
          );
        }
        for (const c of clients) c.lastSeq = 0;
        process.send({ op: 'phase-ready', id: cmd.id });
        break;
      }
      case 'collect': {
        const p = phase;
        if (p?.timer) clearInterval(p.timer);
        const closeCodes = clients.map((c) => c.closeCode).filter((x) => x !== null);
        const errorCodes = {};
        for (const c of clients)
          for (const [k, v] of Object.entries(c.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
        process.send({
          op: 'stats',
          id: p?.id,
          deliveries: p?.deliveries ?? 0,
          done: p?.done ?? 0,
          stale: p?.stale ?? 0,
          dupes: p?.dupes ?? 0,
          frames: p ? clients.reduce((n, c) => n + c.deliveryFrames, 0) - p.frames0 : 0,
          hist: p ? p.hist.toJSON() : null,
          outOfOrder: clients.reduce((n, c) => n + c.outOfOrder, 0),
          errors: clients.reduce((n, c) => n + c.errors, 0),
          errorCodes,
          closed: closeCodes.length,
          closeCodes: tally(closeCodes),
          lastError: clients.find((c) => c.lastError)?.lastError,
        });
        break;
      }
      case 'close': {
        if (phase?.timer) clearInterval(phase.timer);
        for (const c of clients) c.close();
        setTimeout(() => process.exit(0), 300);
        break;
      }
    }
  } catch (err) {
    process.send({ op: 'fatal', message: String(err?.stack ?? err) });
  }
});

process.send({ op: 'hello' });
