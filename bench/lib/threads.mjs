// CPU time of a process's threads (Linux /proc), to tell the main thread's
// work from V8's helper threads (JIT compilation, parallel GC).
import fs from 'node:fs';

const TICK_US = 10_000; // USER_HZ = 100

/** {tid: {user, system}} in µs; the first thread is the main thread. */
export function threadCpu(pid) {
  const out = {};
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[tid] = { user: Number(f[11]) * TICK_US, system: Number(f[12]) * TICK_US };
    } catch {
      /* thread exited */
    }
  }
  return out;
}

/** CPU µs between two readings: the main thread (tid = pid) and every other thread together. */
export function threadSplit(pid, before, after) {
  let main = 0;
  let helpers = 0;
  for (const [tid, v] of Object.entries(after)) {
    const p = before[tid] ?? { user: 0, system: 0 };
    const d = v.user + v.system - p.user - p.system;
    if (Number(tid) === pid) main += d;
    else helpers += d;
  }
  return { main, helpers };
}
