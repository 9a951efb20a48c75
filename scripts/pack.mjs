#!/usr/bin/env node
// Writes the tarballs of the workspace packages (built by build-packages.mjs) to dist/packs/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'dist/packs');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const r = spawnSync('npm', ['pack', '--workspaces', '--pack-destination', out], {
  cwd: root,
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`packed into ${path.relative(root, out)}: ${fs.readdirSync(out).join(', ')}`);
