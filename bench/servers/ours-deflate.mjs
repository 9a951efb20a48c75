// The demo app (BENCH_OURS_SCRIPT, default dist/apps/demo-chat/src/main.js) with
// permessage-deflate offered by its WebSocket server: `ws` turns it off by default
// and the streaming module leaves it so. Used by bench/idle-connections.mjs to
// measure what the option costs per connection; nothing else changes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = path.resolve(root, process.env.BENCH_OURS_SCRIPT || 'dist/apps/demo-chat/src/main.js');
// Resolve @nestjs/platform-ws the way the demo does, so the patched class is the one it uses.
const require = createRequire(script);
const { WsAdapter } = require('@nestjs/platform-ws');
const create = WsAdapter.prototype.create;
WsAdapter.prototype.create = function createWithDeflate(port, options) {
  return create.call(this, port, { ...options, perMessageDeflate: true });
};
require(script);
