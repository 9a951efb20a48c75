// A client process: holds a share of the receiving connections, counts
// deliveries per phase, tracks how far every one of its connections has got
// (for the sender's end-to-end window) and keeps a latency histogram.
// Driven by the orchestrator (bench/run.mjs) over the IPC channel.
import { BenchClient, wsUrl } from './client.mjs';
import { Histogram } from './histogram.mjs';

let clients = [];
let phase = null; // { id, m, counts: Uint32Array, done, hist, deliveries, stale, dupes }

function onDelivery(ph, seq, latUs) {
  const p = phase;
  if (!p || ph !== p.id) {
    if (p) p.stale++;
    return;
  }
  if (seq < 1 || seq > p.m) return;
  const c = ++p.counts[seq];
  if (c > clients.length) p.dupes++;
  p.deliveries++;
  p.hist.record(latUs);
  if (seq === p.done + 1 && c >= clients.length) {
    while (p.done < p.m && p.counts[p.done + 1] >= clients.length) p.done++;
    process.send({ op: 'progress', phase: p.id, done: p.done });
  }
}

async function inBatches(items, size, fn) {
  const results = [];
  for (let i = 0; i < items.length; i += size) {
    results.push(...(await Promise.allSettled(items.slice(i, i + size).map(fn))));
  }
  return results;
}

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
        const res = await inBatches(clients, 50, (c) => c.join(cmd.roomId));
        const failed = res.filter((r) => r.status === 'rejected');
        process.send({
          op: 'joined',
          ok: res.length - failed.length,
          failed: failed.length,
          firstError: failed[0]?.reason?.message,
        });
        break;
      }
      case 'phase': {
        phase = {
          id: cmd.id,
          m: cmd.m,
          counts: new Uint32Array(cmd.m + 2),
          done: 0,
          hist: new Histogram(),
          deliveries: 0,
          stale: 0,
          dupes: 0,
          frames0: clients.reduce((n, c) => n + c.deliveryFrames, 0),
        };
        for (const c of clients) c.lastSeq = 0;
        process.send({ op: 'phase-ready', id: cmd.id });
        break;
      }
      case 'collect': {
        const p = phase;
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
          closed: clients.filter((c) => c.closeCode !== null).length,
          closeCodes: [...new Set(clients.map((c) => c.closeCode).filter((x) => x !== null))],
          lastError: clients.find((c) => c.lastError)?.lastError,
        });
        break;
      }
      case 'close': {
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
