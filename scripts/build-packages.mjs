#!/usr/bin/env node
// Builds the workspace packages into their own dist/ folders, in dependency order:
// - @nest-streaming/protocol and @nest-streaming/client: ESM and CommonJS bundles
//   (esbuild; the client also as a browser script exposing `NestStreaming`), and
//   declarations (tsc);
// - @nest-streaming/streaming: CommonJS and declarations (tsc, which keeps the
//   decorator metadata Nest's injection needs).
// `npm run pack` then writes their tarballs to dist/packs/.
// A package whose dist/ is newer than every file of its src/ and its
// package.json is not built again (FORCE_BUILD=1 builds anyway). Package
// names as arguments build only those (and the ones before them in the order).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const lib = (name, ...p) => path.join(root, 'libs', name, ...p);

function tsc(project) {
  const r = spawnSync('npx', ['tsc', '-p', project], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

async function bundles(name, { browserGlobal } = {}) {
  const entry = lib(name, 'src/index.ts');
  const out = lib(name, 'dist');
  const common = {
    entryPoints: [entry],
    bundle: true,
    target: 'es2020',
    sourcemap: true,
    logLevel: 'warning',
  };
  await build({ ...common, format: 'esm', outfile: path.join(out, 'esm/index.js'), platform: 'neutral' });
  fs.writeFileSync(path.join(out, 'esm/package.json'), '{ "type": "module" }\n');
  await build({ ...common, format: 'cjs', outfile: path.join(out, 'cjs/index.js'), platform: 'node' });
  if (browserGlobal) {
    for (const minify of [false, true]) {
      await build({
        ...common,
        format: 'iife',
        globalName: browserGlobal,
        platform: 'browser',
        minify,
        outfile: path.join(out, `browser/nest-streaming-${name}${minify ? '.min' : ''}.js`),
      });
    }
  }
  tsc(lib(name, 'tsconfig.build.json'));
}

/** Newest modification time under `p` (0 when it does not exist). */
function newest(p) {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const e of fs.readdirSync(p)) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

const STAMP = '.built';
let changed = false;
const ORDER = ['protocol', 'client', 'streaming'];
const wanted = process.argv.slice(2);
for (const w of wanted)
  if (!ORDER.includes(w)) throw new Error(`unknown package ${w}: one of ${ORDER.join(', ')}`);
const last = wanted.length ? Math.max(...wanted.map((w) => ORDER.indexOf(w))) : ORDER.length - 1;
for (const name of ORDER.slice(0, last + 1)) {
  const stamp = lib(name, 'dist', STAMP);
  const inputs = Math.max(newest(lib(name, 'src')), newest(lib(name, 'package.json')));
  // Rebuilt when its sources changed, or when a package before it (one it depends on) was rebuilt.
  const fresh =
    !process.env.FORCE_BUILD && !changed && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs > inputs;
  if (fresh) continue;
  changed = true;
  fs.rmSync(lib(name, 'dist'), { recursive: true, force: true });
  if (name === 'protocol') await bundles('protocol');
  else if (name === 'client') await bundles('client', { browserGlobal: 'NestStreaming' });
  else tsc(lib('streaming', 'tsconfig.build.json'));
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
  console.log(`built libs/${name}/dist`);
}
