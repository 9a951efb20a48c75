#!/usr/bin/env node
// A/B evidence for the hot-path suggestions in bench/README.md, without touching
// the repository's code: copies the compiled demo (dist/) into a temporary
// directory, applies each patch to the copy's compiled JavaScript, and runs
// bench/run.mjs against every variant (nest-streaming only), interleaved over
// BENCH_AB_ROUNDS rounds.
//
//   npm run build && node bench/experiments/batching-ab.mjs
//   BENCH_AB_ROUNDS=3 BENCH_MESSAGES=2000 node bench/experiments/batching-ab.mjs
//
// Variants:
//   base      the build as it is
//   no-tick   RequestDispatcher.dispatch no longer awaits a setImmediate turn before
//             each ack, so one connection's queued requests are handled in one turn and
//             the flush scheduler can batch their broadcasts (one write per socket per tick)
//   no-tick+buffer  also: WsTransport.write sends one Buffer shared by every socket
//             (Buffer.from once per broadcast, one join per identical batch) instead of
//             a string that ws encodes again for each socket
// A patch that no longer matches the compiled code fails loudly: update it or drop it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(benchDir, '..');
const dist = path.join(root, 'dist');
const rounds = Number(process.env.BENCH_AB_ROUNDS ?? 2);

const DISPATCHER = 'libs/streaming/src/protocol/request-dispatcher.service.js';
const GATEWAY = 'libs/streaming/src/transports/ws/streaming.gateway.js';

const noTick = {
  file: DISPATCHER,
  find: 'await (0, promises_1.setImmediate)();',
  replace: '/* A/B: no per-request turn before the ack */',
};
const sharedBuffer = [
  {
    file: GATEWAY,
    find: "this.socket.send(frames.length === 1 ? frames[0] : frames.join('\\n'));",
    replace: `let buf;
        if (frames.length === 1) {
            if (frames[0] !== abCache.str) { abCache.str = frames[0]; abCache.buf = Buffer.from(abCache.str); }
            buf = abCache.buf;
        } else {
            const last = abCache.frames;
            let same = last !== null && last.length === frames.length;
            for (let i = 0; same && i < frames.length; i++) same = last[i] === frames[i];
            if (!same) { abCache.frames = frames; abCache.joined = Buffer.from(frames.join('\\n')); }
            buf = abCache.joined;
        }
        this.socket.send(buf, { binary: false });`,
  },
  {
    file: GATEWAY,
    find: 'class WsTransport {',
    replace: 'const abCache = { str: null, buf: null, frames: null, joined: null };\nclass WsTransport {',
  },
];

const VARIANTS = {
  base: [],
  'no-tick': [noTick],
  'no-tick+buffer': [noTick, ...sharedBuffer],
};

if (!fs.existsSync(path.join(dist, 'apps/demo-chat/src/main.js'))) {
  console.error('dist/apps/demo-chat/src/main.js is missing: run npm run build first');
  process.exit(1);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nest-streaming-ab-'));
for (const [name, patches] of Object.entries(VARIANTS)) {
  const dir = path.join(tmp, name);
  fs.cpSync(dist, dir, { recursive: true });
  for (const p of patches) {
    const file = path.join(dir, p.file);
    const src = fs.readFileSync(file, 'utf8');
    if (src.split(p.find).length !== 2)
      throw new Error(`${name}: patch target not found once in ${p.file}: ${p.find}`);
    fs.writeFileSync(file, src.replace(p.find, p.replace));
  }
}

const rows = [];
for (let round = 1; round <= rounds; round++) {
  for (const name of Object.keys(VARIANTS)) {
    const resultsName = `ab-${name}-${round}`;
    console.log(`--- ${name}, round ${round}`);
    execFileSync(process.execPath, [path.join(benchDir, 'run.mjs')], {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        BENCH_SCENARIOS: 'fanout',
        BENCH_SERVERS: 'ours',
        BENCH_OURS_SCRIPT: path.join(tmp, name, 'apps/demo-chat/src/main.js'),
        NODE_PATH: path.join(root, 'node_modules'),
        BENCH_PROFILE: '0',
        BENCH_SKIP_BUILD: '1',
        BENCH_MESSAGES: process.env.BENCH_MESSAGES ?? '1000',
        BENCH_RESULTS_NAME: resultsName,
      },
    });
    const r = JSON.parse(fs.readFileSync(path.join(benchDir, 'results', `${resultsName}.json`), 'utf8'))
      .scenarios.fanout.data.results[0];
    rows.push({ name, round, tp: r.phases?.throughput, rate: r.phases?.rate });
  }
}
fs.rmSync(tmp, { recursive: true, force: true });

const f = (v, d) => (v === undefined || v === null ? 'n/a' : v.toFixed(d));
console.log(
  '\nvariant          round  µs/delivery max load  deliveries/s  msgs/frame  p99 ms  µs/delivery fixed rate',
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(16)} ${String(r.round).padStart(5)}  ${f(r.tp?.server_cpu_us_per_delivery, 3).padStart(20)}  ` +
      `${f(r.tp?.deliveries_per_s, 0).padStart(12)}  ${f(r.tp?.deliveries_per_frame, 2).padStart(10)}  ` +
      `${f(r.tp ? r.tp.latency.p99_us / 1000 : null, 1).padStart(6)}  ${f(r.rate?.server_cpu_us_per_delivery, 3).padStart(22)}`,
  );
