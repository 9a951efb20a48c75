#!/usr/bin/env node
// Builds the workspace packages into their own dist/ folders, in dependency order:
// - @nest-streaming/protocol and @nest-streaming/client: ESM and CommonJS bundles
//   (esbuild; the client also as a browser script exposing `NestStreaming`), and
//   declarations (tsc);
// - @nest-streaming/streaming: CommonJS and declarations (tsc, which keeps the
//   decorator metadata Nest's injection needs).
// `npm run pack` then writes their tarballs to dist/packs/.
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

for (const name of ['protocol', 'client', 'streaming'])
  fs.rmSync(lib(name, 'dist'), { recursive: true, force: true });
await bundles('protocol');
await bundles('client', { browserGlobal: 'NestStreaming' });
tsc(lib('streaming', 'tsconfig.build.json'));
console.log('built libs/protocol, libs/client and libs/streaming into their dist/ folders');
