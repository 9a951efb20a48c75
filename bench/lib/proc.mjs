// Server-side measurements from /proc, the same for every server under test.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
} catch {
  /* Linux default */
}
export const CLK_TCK = clkTck;

/** utime + stime of a process, in microseconds (resolution 1/CLK_TCK s). */
export function cpuTimeUs(pid) {
  return statCpuUs(`/proc/${pid}/stat`);
}

/** utime + stime from a `stat` file of /proc (a process's, or one thread's under task/), in microseconds. */
function statCpuUs(path) {
  const stat = fs.readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return {
    user: (utime * 1e6) / clkTck,
    system: (stime * 1e6) / clkTck,
    total: ((utime + stime) * 1e6) / clkTck,
  };
}

/** Resident set size of a process in bytes. */
export function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time the whole machine spent busy (all cores, all processes), in microseconds. */
export function machineBusyUs() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1e6) / clkTck;
}

/** VmRSS and VmHWM (peak RSS since start) of a process in bytes; NaN once it is gone. */
export function memStatus(pid) {
  let status = '';
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rss: NaN, hwm: NaN };
  }
  const kb = (key) => {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * The kernel's view of one loopback TCP socket, from /proc/net/tcp: state (1 = ESTABLISHED),
 * bytes in its send and receive queues, and its inode (0 once no process holds it any more).
 * Null when there is no such socket.
 */
export function tcpSocket(localPort, remotePort) {
  const hex = (p) => p.toString(16).toUpperCase().padStart(4, '0');
  const want = `:${hex(localPort)}`;
  const peer = `:${hex(remotePort)}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1].endsWith(want) || !f[2].endsWith(peer)) continue;
      const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
      return { state: parseInt(f[3], 16), txQueue: tx, rxQueue: rx, inode: Number(f[9]) };
    }
  }
  return null;
}

/** Reset a process's VmHWM to its current RSS (Linux: `echo 5 > /proc/<pid>/clear_refs`). False if not allowed. */
export function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time of each thread of a process, {tid: {user, system, total}} in µs,
 * to tell the main thread's work from V8's helper threads (JIT, parallel GC).
 */
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
      out[tid] = statCpuUs(`/proc/${pid}/task/${tid}/stat`);
    } catch {
      /* thread exited */
    }
  }
  return out;
}

/** CPU µs between two {@link threadCpu} readings: the main thread (tid = pid) and every other thread together. */
export function threadSplit(pid, before, after) {
  let main = 0;
  let helpers = 0;
  for (const [tid, v] of Object.entries(after)) {
    const d = v.total - (before[tid]?.total ?? 0);
    if (Number(tid) === pid) main += d;
    else helpers += d;
  }
  return { main, helpers };
}
