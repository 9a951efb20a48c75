// The demo app (dist/apps/demo-chat/src/main.js, or BENCH_STORE_DEMO_SCRIPT) on the local
// backend's SQLite history store: the file BENCH_STORE_PATH, with a cache of
// BENCH_STORE_CACHE_ENTRIES entries when set (else the library's default). Used by
// bench/local-store.mjs as BENCH_OURS_SCRIPT: the orchestrator's "ours" server asks for the
// in-memory store, which this overrides; nothing else changes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = path.resolve(root, process.env.BENCH_STORE_DEMO_SCRIPT || 'dist/apps/demo-chat/src/main.js');
if (!process.env.BENCH_STORE_PATH) throw new Error('BENCH_STORE_PATH (the SQLite file) is not set');
process.env.FORGE_STREAMING_HISTORY_STORE = 'sqlite';
process.env.FORGE_STREAMING_HISTORY_PATH = process.env.BENCH_STORE_PATH;
if (process.env.BENCH_STORE_CACHE_ENTRIES)
  process.env.FORGE_STREAMING_HISTORY_CACHE_ENTRIES = process.env.BENCH_STORE_CACHE_ENTRIES;
createRequire(script)(script);
