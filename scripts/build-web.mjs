#!/usr/bin/env node
// Bundles the demo page (apps/demo-chat/web/main.ts + the client library) into
// apps/demo-chat/public/app.js with esbuild.
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
await build({
  entryPoints: [path.join(root, 'apps/demo-chat/web/main.ts')],
  outfile: path.join(root, 'apps/demo-chat/public/app.js'),
  bundle: true,
  format: 'iife',
  target: 'es2020',
  sourcemap: true,
  minify: process.env.NODE_ENV === 'production',
  alias: {
    '@nest-streaming/client': path.join(root, 'libs/client/src/index.ts'),
    '@nest-streaming/protocol': path.join(root, 'libs/protocol/src/index.ts'),
  },
  logLevel: 'warning',
});
