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
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
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
