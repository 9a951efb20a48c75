#!/usr/bin/env node
// Benchmarks of nest-streaming's demo app against a bare `ws` broadcast loop
// and a minimal NestJS + Socket.IO gateway, measured the same way.
//
//   npm run bench                                        # every scenario, about 15 minutes on 2 cores
//   BENCH_SCENARIOS=fanout,rooms npm run bench           # a subset
//   BENCH_SCENARIOS=rate2000 BENCH_RATE2000_SUBSCRIBERS=200 BENCH_SKIP_BUILD=1 npm run bench   # quick
//
// Scenarios (bench/scenarios/*.mjs, selected with BENCH_SCENARIOS):
//   fanout    one room, max load + fixed rate + idle memory + CPU profile (the original benchmark)
//   rate2000  2000 subscribers × 20 msg/s          rate10k  10,000 subscribers × 4 msg/s
//   rooms     500 rooms × 10 members, 4000 msg/s round robin
//   pipeline  one publisher writing 2000 send_message requests back to back
//   resume    resume of 10,000 missed messages (nest-streaming only)
//   paused    one paused consumer among 500 receiving 1 KB at 200 msg/s
//   redis2    two demo nodes on a real redis-server, 2000 subscribers × 20 msg/s
//   connect   connect + join one room: server CPU per connection
//
// Each server runs in its own child process on 127.0.0.1; receiving connections
// live in client processes (lib/client-worker.mjs); the publisher is held by
// this orchestrator. Results are merged into bench/results/latest.json (a
// scenario not run keeps its previous result) and bench/RESULTS.md is rendered
// from it. See bench/README.md for the method and every variable.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { commandLine, common, list } from './lib/config.mjs';
import { machine, mdTable, prettify, printTable } from './lib/report.mjs';
import { SERVERS, benchDir, log, resultsDir, root } from './lib/servers.mjs';
import fanout from './scenarios/fanout.mjs';
import { rate2000, rate10k } from './scenarios/rate.mjs';
import rooms from './scenarios/rooms.mjs';
import pipeline from './scenarios/pipeline.mjs';
import resume from './scenarios/resume.mjs';
import paused from './scenarios/paused.mjs';
import redis2 from './scenarios/redis2.mjs';
import connect from './scenarios/connect.mjs';

const SCENARIOS = [fanout, rate2000, rate10k, rooms, pipeline, resume, paused, redis2, connect];
const byId = Object.fromEntries(SCENARIOS.map((s) => [s.id, s]));
const latestFile = path.join(resultsDir, 'latest.json');
const resultsMd = path.join(benchDir, 'RESULTS.md');
/** Sections written by hand, appended to RESULTS.md in this order. */
const handWrittenMd = [
  path.join(benchDir, 'results', 'analysis.md'), // where the unmet targets' time goes (profiles)
  path.join(benchDir, 'results', 'content-filters.md'), // from bench/content-filters.bench.ts
  path.join(benchDir, 'results', 'architecture-ab.md'), // before/after the architecture work (issue 13)
  path.join(benchDir, 'results', 'codec.md'), // MessagePack against JSON, from bench/codec.mjs (issue 14)
  path.join(benchDir, 'results', 'local-store.md'), // the local backend on a 1M-message SQLite store, from bench/local-store.mjs (issue 16)
  path.join(benchDir, 'results', 'idle-connections.md'), // idle connections per node, from bench/idle-connections.mjs (issue 16)
  path.join(benchDir, 'results', 'redis-cluster.md'), // Redis Cluster against a single Redis, from bench/redis-cluster.mjs (issue 16)
];

/** What was measured as "ours": the script, and the repository's commit when the script is built from it. */
function codeUnderTest() {
  const script = path.resolve(root, common.oursScript);
  const inRepo = script.startsWith(root + path.sep);
  const out = {
    ours_script: inRepo ? path.relative(root, script) : script,
    label: process.env.BENCH_OURS_LABEL || null,
  };
  if (inRepo) {
    try {
      out.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'libs', 'apps'], {
        cwd: root,
      }).toString();
      out.uncommitted_changes_in_libs_or_apps = dirty.trim() !== '';
    } catch {
      /* not a git checkout */
    }
  }
  return out;
}

const codeText = (c) =>
  c
    ? `\`${c.ours_script}\`` +
      (c.label ? ` (${c.label})` : '') +
      (c.commit
        ? ` built from ${c.commit}${c.uncommitted_changes_in_libs_or_apps ? ' with uncommitted changes' : ''}`
        : '')
    : 'n/a';

/** A results file (latest.json), in this format; the single-scenario format of earlier versions becomes its `fanout` entry. */
function readResults(file) {
  if (!fs.existsSync(file)) return { scenarios: {} };
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (json.scenarios) return json;
  const c = json.config ?? {};
  return {
    scenarios: {
      fanout: {
        id: 'fanout',
        title: fanout.title,
        finished_at: json.finished_at,
        duration_s: json.duration_s,
        machine: json.machine,
        command: `BENCH_CONNECTIONS=${c.connections} BENCH_MESSAGES=${c.messages} BENCH_WINDOW=${c.window} BENCH_RATE=${c.rate} BENCH_RATE_MESSAGES=${c.rateMessages} npm run bench`,
        data: { config: c, results: json.results, comparisons: json.comparisons, profile: json.profile },
      },
    },
  };
}

const metText = (r) =>
  (r.met === null || r.met === undefined ? 'n/a' : r.met ? 'yes' : '**no**') +
  (r.disturbed ? ' (disturbed)' : '');

function writeMarkdown(report) {
  const entries = SCENARIOS.map((s) => report.scenarios[s.id]).filter(Boolean);
  const mc = report.machine ?? entries[0]?.machine;
  const lines = ['# Benchmark results', ''];
  lines.push(
    'Generated by `npm run bench` (bench/run.mjs). Method, variables and caveats: [README.md](README.md). ' +
      'Each section says when it ran, what code it measured and the command that produced it ' +
      '(`BENCH_SCENARIOS=<id>` re-runs one section and leaves the others as they are).',
    '',
  );
  if (mc) {
    lines.push('## Machine', '');
    lines.push(
      `- nproc: ${mc.nproc} (${mc.cpu_model}), ${mc.total_mem_gib} GiB RAM, ${mc.platform}`,
      `- node ${mc.node}; the servers, the client processes and the orchestrator share these cores`,
      '',
    );
  }
  const rows = entries.flatMap((e) => byId[e.id].targets?.(e.data) ?? []);
  if (rows.length > 0) {
    lines.push("## Summary against issue 10's targets", '');
    lines.push(
      mdTable([
        ['scenario', 'bare ws', 'Nest + socket.io', 'nest-streaming', 'ours vs', 'target', 'met'],
        ...rows.map((r) => [
          r.what,
          r.ws ?? '–',
          r.socketio ?? '–',
          r.ours ?? '–',
          r.vs ?? '',
          r.target,
          metText(r),
        ]),
      ]),
      '',
    );
    if (rows.some((r) => r.disturbed))
      lines.push(
        '"disturbed": during a phase behind that verdict another process used 0.3 cores or more, or a server fell ' +
          'behind the fixed rate end to end (the 2 cores could not keep up); its latencies are then mostly queueing. ' +
          'Run again on a quiet machine before relying on it.',
        '',
      );
  }
  for (const e of entries) {
    lines.push(`## ${e.title} (\`${e.id}\`)`, '');
    lines.push(
      `- ran ${e.finished_at} (${Math.round(e.duration_s)} s); nest-streaming: ${codeText(e.code)}`,
      `- command: \`${e.command}\``,
      '',
    );
    lines.push(...byId[e.id].render(e.data));
  }
  // Sections written by hand (analysis, bench/*.bench.ts results) are appended as they are.
  for (const md of handWrittenMd)
    if (fs.existsSync(md)) lines.push('', fs.readFileSync(md, 'utf8').trim(), '');
  fs.writeFileSync(resultsMd, lines.join('\n'));
}

async function main() {
  if (process.env.BENCH_REPORT_ONLY === '1') {
    // Re-render RESULTS.md from bench/results/latest.json (after a change to the report's format).
    writeMarkdown(readResults(latestFile));
    await prettify([resultsMd]);
    console.log('wrote bench/RESULTS.md from bench/results/latest.json');
    return;
  }
  const selected = list('BENCH_SCENARIOS', SCENARIOS.map((s) => s.id).join(','));
  for (const id of selected)
    if (!byId[id])
      throw new Error(`unknown scenario "${id}" in BENCH_SCENARIOS (known: ${Object.keys(byId).join(', ')})`);
  for (const s of common.servers) if (!SERVERS[s]) throw new Error(`unknown server "${s}" in BENCH_SERVERS`);
  const started = Date.now();
  log(`scenarios ${selected.join(', ')}; servers ${common.servers.join(', ')}`);
  const needsOurs = common.servers.includes('ours');
  if (common.build && needsOurs) {
    log('building the demo app (npm run build; BENCH_SKIP_BUILD=1 skips)');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  }
  if (needsOurs && !fs.existsSync(path.resolve(root, common.oursScript)))
    throw new Error(`${common.oursScript} is missing: run npm run build`);
  fs.mkdirSync(resultsDir, { recursive: true });

  const mc = machine();
  const code = codeUnderTest();
  const command = commandLine();
  const ran = {};
  let failed = false;
  for (const id of selected) {
    const s = byId[id];
    log(`=== ${id}: ${s.title}`);
    const t0 = Date.now();
    try {
      const data = await s.run();
      ran[id] = {
        id,
        title: s.title,
        finished_at: new Date().toISOString(),
        duration_s: (Date.now() - t0) / 1000,
        command,
        machine: mc,
        code,
        data,
      };
      if (data.results?.some((r) => r.error)) failed = true;
    } catch (err) {
      log(`${id} FAILED: ${err.stack ?? err}`);
      failed = true;
    }
  }

  // BENCH_RESULTS_NAME=x merges into bench/results/x.json instead, leaving latest.json and RESULTS.md
  // alone (side experiments do not replace the reference results).
  const name = process.env.BENCH_RESULTS_NAME;
  const jsonOut = name ? path.join(resultsDir, `${name}.json`) : latestFile;
  const report = readResults(jsonOut);
  report.format = 2;
  report.updated_at = new Date().toISOString();
  report.machine = mc;
  Object.assign(report.scenarios, ran);
  fs.writeFileSync(jsonOut, JSON.stringify(report, null, 2));
  if (!name) writeMarkdown(report);
  await prettify([jsonOut, ...(name ? [] : [resultsMd])]);

  for (const [id, e] of Object.entries(ran)) {
    const sum = byId[id].summary?.(e.data);
    if (!sum) continue;
    console.log(`\n== ${e.title} (${id})`);
    printTable(sum.rows);
    for (const n of sum.notes) console.log(n);
  }
  const rows = Object.values(ran).flatMap((e) => byId[e.id].targets?.(e.data) ?? []);
  if (rows.length > 0) {
    console.log('\n== Issue 10 targets');
    printTable([
      ['scenario', 'bare ws', 'socket.io', 'ours', 'ours vs', 'target', 'met'],
      ...rows.map((r) => [
        r.what,
        r.ws ?? '-',
        r.socketio ?? '-',
        r.ours ?? '-',
        r.vs ?? '',
        r.target,
        metText(r).replace(/\*/g, ''),
      ]),
    ]);
  }
  console.log(
    `wrote ${path.relative(root, jsonOut)}${name ? '' : ' and bench/RESULTS.md'} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
