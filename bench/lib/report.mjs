// Formatting shared by the scenarios: numbers, tables, ratios, the machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { CLK_TCK } from './proc.mjs';

export const f = (v, d = 2) =>
  v === null || v === undefined || Number.isNaN(v) || !Number.isFinite(v) ? 'n/a' : v.toFixed(d);
/** Microseconds as milliseconds. */
export const ms = (us) => (us === null || us === undefined ? 'n/a' : (us / 1000).toFixed(2));
export const mib = (bytes) => (Number.isFinite(bytes) ? (bytes / 2 ** 20).toFixed(1) : 'n/a');
export const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(x > 0.995 && x < 1 ? 1 : 0)}%` : 'n/a');

/** `a / b` when both are positive numbers, else null. */
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
/** `1.13x` */
export const x = (r) => (r === null || r === undefined ? 'n/a' : `${r.toFixed(2)}x`);
/** `**1.13x** (13% more)` */
export function ratioText(r) {
  if (r === null || r === undefined) return 'n/a';
  const how = r >= 1 ? `${((r - 1) * 100).toFixed(0)}% more` : `${((1 - r) * 100).toFixed(0)}% less`;
  return `**${r.toFixed(2)}x** (${how})`;
}

export const mdTable = (rows) =>
  [
    `| ${rows[0].join(' | ')} |`,
    `| ${rows[0].map((_c, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

export function printTable(rows) {
  const widths = rows[0].map((_c, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) =>
    r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  console.log('\n' + line(rows[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
}

/** `{1013: 3, 1006: 1}` -> `3× 1013, 1× 1006` */
export const tallyText = (o) =>
  Object.entries(o ?? {})
    .map(([k, v]) => `${v}× ${k}`)
    .join(', ');

export function machine() {
  const cpus = os.cpus();
  let nproc = cpus.length;
  try {
    nproc = Number(execFileSync('nproc').toString().trim());
  } catch {
    /* os.cpus() then */
  }
  return {
    nproc,
    cpu_model: cpus[0]?.model,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    total_mem_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    clk_tck: CLK_TCK,
  };
}

/** Format written files the way `npm run format:check` expects (skipped if prettier is missing). */
export async function prettify(files) {
  let prettier;
  try {
    prettier = await import('prettier');
  } catch {
    return;
  }
  for (const file of files) {
    const options = { ...(await prettier.resolveConfig(file)), filepath: file };
    fs.writeFileSync(file, await prettier.format(fs.readFileSync(file, 'utf8'), options));
  }
}

/** "**Warning:** other processes used CPU during ..." for the results' phases with foreign load, or nothing. */
export function foreignLoadWarning(results) {
  const noisy = results
    .flatMap((r) => Object.values(r.phases ?? {}).map((p) => [`${r.label} ${p.name}`, p]))
    .filter(([, p]) => p && p.foreign_cpu_cores > 0.2)
    .map(([label, p]) => `${label}: ${p.foreign_cpu_cores.toFixed(2)} cores`);
  if (noisy.length === 0) return [];
  return [
    `**Warning:** other processes on this machine used CPU during some phases (${noisy.join('; ')}). ` +
      "CPU time per delivery is the server process's own and is little affected; throughput and latency are.",
    '',
  ];
}

/**
 * True when a phase's figures are not to be trusted for a verdict: another process used
 * 0.3 cores or more meanwhile, or a fixed-rate phase fell behind its rate end to end.
 */
export function disturbed(...phases) {
  return phases.some(
    (p) =>
      p &&
      ((p.foreign_cpu_cores ?? 0) >= 0.3 ||
        (p.mode === 'rate' && p.rate && p.messages_per_s < 0.95 * p.rate)),
  );
}
