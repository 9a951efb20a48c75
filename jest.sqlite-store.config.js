/**
 * The e2e specs on the local backend's SQLite history store with a tiny cache
 * (see test/support/sqlite-store.setup.ts):
 *
 *   npx jest -c jest.sqlite-store.config.js --runInBand test/threads.e2e-spec.ts ...
 *   E2E_SQLITE_CACHE_ENTRIES=0 npx jest -c jest.sqlite-store.config.js --runInBand test/search.e2e-spec.ts
 */
const base = require('./jest.config.js');

const e2e = base.projects.find((p) => p.displayName === 'e2e');
module.exports = {
  ...e2e,
  displayName: 'e2e-sqlite-store',
  testTimeout: base.testTimeout,
  setupFilesAfterEnv: ['<rootDir>/test/support/sqlite-store.setup.ts'],
  // Not run here (npm test runs them on their own backends): the Chromium, package-install and
  // multi-server specs (Redis, NATS, built demo processes), and routes, which asserts the store the
  // environment names.
  testPathIgnorePatterns: [
    ...(e2e.testPathIgnorePatterns ?? ['/node_modules/']),
    'browser',
    'demo-layout',
    'demo-chat-features',
    'package-install',
    'redis-cluster',
    'redis-backend',
    'nats-backend',
    '/cluster\\.e2e',
    'routes\\.e2e',
  ],
};
