/**
 * Jest setup (`setupFilesAfterEnv`) of `jest.sqlite-store.config.js`: every app an e2e spec
 * builds in this process runs the local backend on the SQLite history store
 * with a tiny cache, instead of the in-memory store.
 *
 * The apps read `FORGE_STREAMING_*` while they are built, and `withEnv`
 * (./app.ts) hides inherited ones, so `process.env` answers for three of them
 * unless the spec set them: `FORGE_STREAMING_HISTORY_STORE` is `sqlite` (also
 * where a spec asks for `memory`), `FORGE_STREAMING_HISTORY_PATH` a fresh file
 * for each app, `FORGE_STREAMING_HISTORY_CACHE_ENTRIES` the value of
 * `E2E_SQLITE_CACHE_ENTRIES` (default 10). Options given in code win, as always.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'e2e-sqlite-store-'));
// E2E_SQLITE_KEEP=1 keeps the files (to look into them afterwards).
if (!process.env.E2E_SQLITE_KEEP) afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cacheEntries = process.env.E2E_SQLITE_CACHE_ENTRIES || '10';
let files = 0;

const real = process.env;
process.env = new Proxy(real, {
  get(target, key) {
    const value = Reflect.get(target, key) as string | undefined;
    switch (key) {
      case 'FORGE_STREAMING_HISTORY_STORE':
        return value === undefined || value === 'memory' ? 'sqlite' : value;
      case 'FORGE_STREAMING_HISTORY_PATH':
        return value || join(dir, `app-${++files}.sqlite`);
      case 'FORGE_STREAMING_HISTORY_CACHE_ENTRIES':
        return value || cacheEntries;
      default:
        return value;
    }
  },
});
