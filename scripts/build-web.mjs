#!/usr/bin/env node
// Bundles the demo page (apps/demo-chat/web/main.ts + the @nest-streaming/client
// package, as built by build-packages.mjs) into apps/demo-chat/public/app.js.
// The page imports the client as any app would, from its built dist/, so the
// client package (and the protocol it needs) is built first (a no-op when it
// is up to date; a fresh clone has no dist/ yet).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const packages = spawnSync(process.execPath, [path.join(root, 'scripts/build-packages.mjs'), 'client'], {
  cwd: root,
  stdio: 'inherit',
});
if (packages.status !== 0) process.exit(packages.status ?? 1);
await build({
  entryPoints: [path.join(root, 'apps/demo-chat/web/main.ts')],
  outfile: path.join(root, 'apps/demo-chat/public/app.js'),
  bundle: true,
  format: 'iife',
  target: 'es2020',
  sourcemap: true,
  minify: process.env.NODE_ENV === 'production',
  // The app's tsconfig (no path aliases): the client comes from node_modules, as in any app.
  tsconfig: path.join(root, 'apps/demo-chat/tsconfig.app.json'),
  logLevel: 'warning',
});
