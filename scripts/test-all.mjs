#!/usr/bin/env node
// Runs every check and every test of the project, in order:
// typecheck, lint, format check, import cycles, unit tests, end-to-end tests (real redis-server /
// nats-server processes and Chromium started by the tests themselves), the local backend's
// end-to-end tests again on the SQLite store with a tiny cache, the
// black-box conformance suite against the demo app on the local backend, then
// on the redis and nats backends. Prints one summary line at the end:
// "N passed, M failed". Exit code 0 only when everything passed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const only = process.argv.slice(2);
let passed = 0;
let failed = 0;
const failures = [];

function run(name, cmd, args, { count } = {}) {
  if (only.length && !only.includes(name)) return;
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  const ok = r.status === 0;
  const counted = count?.();
  if (counted) {
    passed += counted.passed;
    failed += counted.failed;
  } else if (ok) passed += 1;
  else failed += 1;
  if (!ok) failures.push(name);
  console.log(`=== ${name}: ${ok ? 'ok' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function jestCounts(file) {
  return () => {
    try {
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      return { passed: j.numPassedTests, failed: j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0) };
    } catch {
      return null;
    }
  };
}

/** "N passed, M failed" from the last line of a log. */
function lastLineCounts(file) {
  const last = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').pop() : '';
  const m = /^(\d+) passed, (\d+) failed/.exec(last ?? '');
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nest-streaming-tests-'));
const unitJson = path.join(tmp, 'unit.json');
const e2eJson = path.join(tmp, 'e2e.json');
const confLog = path.join(tmp, 'conformance.log');

run('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
run('lint', 'npx', ['eslint', '.']);
run('format', 'npx', ['prettier', '--check', '.']);
// Layers only point down: no import cycle in the packages (type-only imports count too).
run('cycles', 'npx', [
  'madge',
  '--circular',
  '--extensions',
  'ts',
  '--ts-config',
  'tsconfig.json',
  '--exclude',
  '(^|/)dist/',
  'libs/',
]);
run('unit', 'npx', ['jest', '--selectProjects', 'unit', '--json', `--outputFile=${unitJson}`], {
  count: jestCounts(unitJson),
});
run('e2e', 'npx', ['jest', '--selectProjects', 'e2e', '--runInBand', '--json', `--outputFile=${e2eJson}`], {
  count: jestCounts(e2eJson),
});
// The local backend's end-to-end specs again, on the SQLite store with a cache of 10 entries
// (far smaller than their data): every read that misses goes to the file.
const sqliteJson = path.join(tmp, 'e2e-sqlite.json');
run(
  'e2e-sqlite-store',
  'npx',
  ['jest', '-c', 'jest.sqlite-store.config.js', '--runInBand', '--json', `--outputFile=${sqliteJson}`],
  { count: jestCounts(sqliteJson) },
);
run('conformance', 'bash', ['-c', `set -o pipefail; scripts/conformance.sh 2>&1 | tee ${confLog}`], {
  count: () => lastLineCounts(confLog),
});

const backendsLog = path.join(tmp, 'conformance-backends.log');
run(
  'conformance-backends',
  'bash',
  ['-c', `set -o pipefail; node scripts/conformance-backends.mjs 2>&1 | tee ${backendsLog}`],
  {
    count: () => lastLineCounts(backendsLog),
  },
);

console.log(`\nfailed steps: ${failures.length ? failures.join(', ') : 'none'}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failures.length ? 1 : 0);
