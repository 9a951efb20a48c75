/**
 * The packages as a user gets them. Packs @nest-streaming/{protocol,client,streaming}
 * (scripts/build-packages.mjs, scripts/pack.mjs), copies the app template
 * test/scratch-app to a fresh directory outside the repository, installs the
 * tarballs there with npm (no path aliases, no workspace links), compiles it
 * with its own tsc and runs it:
 * - none of the optional peers (ioredis, nats, better-sqlite3) is installed;
 * - on the local backend, its client script (the installed @nest-streaming/client
 *   over `ws`) joins a room, sends, receives, gets the `@SubscribeRoom('*')`
 *   bot's reply, and sees what the app's own controller posts via StreamingManager;
 * - with FORGE_STREAMING_BACKEND=redis it stops at start-up, naming ioredis.
 *
 * PACKAGE_INSTALL_REUSE_PACKS=1 installs the tarballs already in dist/packs
 * (no build, no pack); PACKAGE_INSTALL_KEEP=1 keeps the scratch directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '..');
const TEMPLATE = join(__dirname, 'scratch-app');
const PACKS = join(REPO_ROOT, 'dist', 'packs');
const PACKAGES = ['protocol', 'client', 'streaming'];
const OPTIONAL_PEERS = ['ioredis', 'nats', 'better-sqlite3'];
const JWT_SECRET = 'package-install-e2e-secret-5b0e7c2d94a1f836';

const SETUP_TIMEOUT_MS = 10 * 60_000;
const NPM_INSTALL_TIMEOUT_MS = 5 * 60_000;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved. */
  output: string;
  timedOut?: boolean;
}

const children = new Set<ChildProcess>();
let dir = '';

/**
 * process.env without the streaming configuration (FORGE_STREAMING_*, JWT_SECRET)
 * and without what `npm test` adds for its own script, plus `extra`.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('FORGE_STREAMING_') || k === 'JWT_SECRET') continue;
    if (/^(npm_lifecycle_|npm_package_)|^(npm_command|npm_config_local_prefix|INIT_CWD)$/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Start `cmd`; `output()` is everything it printed so far. */
function start(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<RunResult>((done, fail) => {
    child.once('error', fail);
    child.once('close', (code, signal) => {
      children.delete(child);
      done({ code, signal, output });
    });
  });
  return { child, exited, output: () => output };
}

/** Run `cmd` to its end (SIGKILLed after `timeoutMs`). */
async function run(
  cmd: string,
  args: string[],
  { cwd, env = cleanEnv(), timeoutMs }: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  const p = start(cmd, args, cwd, env);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.child.kill('SIGKILL');
  }, timeoutMs);
  try {
    return { ...(await p.exited), timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** {@link run}, throwing with the command's output unless it exits 0. */
async function mustRun(cmd: string, args: string[], options: Parameters<typeof run>[2]): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    const how = r.timedOut
      ? `timed out after ${options.timeoutMs / 1000} s`
      : `ended with ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')} (in ${options.cwd}) ${how}:\n${r.output}`);
  }
  return r.output;
}

/** The scratch app (`node dist/main.js`) on a free port, once it printed the port. */
async function startApp(env: Record<string, string> = {}) {
  const app = start(process.execPath, ['dist/main.js'], dir, cleanEnv({ JWT_SECRET, PORT: '0', ...env }));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const port = /listening on port (\d+)/.exec(app.output())?.[1];
    if (port) return { ...app, url: `http://127.0.0.1:${port}` };
    if (app.child.exitCode !== null || app.child.signalCode !== null)
      throw new Error(`the scratch app exited during start-up:\n${app.output()}`);
    if (Date.now() > deadline)
      throw new Error(`the scratch app did not listen within 20 s:\n${app.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (process.env.PACKAGE_INSTALL_REUSE_PACKS !== '1') {
    await mustRun(process.execPath, ['scripts/build-packages.mjs'], {
      cwd: REPO_ROOT,
      timeoutMs: 5 * 60_000,
    });
    await mustRun(process.execPath, ['scripts/pack.mjs'], { cwd: REPO_ROOT, timeoutMs: 2 * 60_000 });
  }
  const tarballs = readdirSync(PACKS);
  const tarballOf = (name: string): string => {
    const file = tarballs.find((f) => new RegExp(`^nest-streaming-${name}-\\d[^/]*\\.tgz$`).test(f));
    if (!file) throw new Error(`no tarball of @nest-streaming/${name} in ${PACKS}: ${tarballs.join(', ')}`);
    return join(PACKS, file);
  };

  dir = realpathSync(mkdtempSync(join(tmpdir(), 'nest-streaming-scratch-app-')));
  if (!relative(REPO_ROOT, dir).startsWith('..')) throw new Error(`${dir} is inside the repository`);
  cpSync(TEMPLATE, dir, {
    recursive: true,
    filter: (src) => !['node_modules', 'dist', 'package-lock.json'].includes(basename(src)),
  });
  const pkg = JSON.parse(readFileSync(join(dir, 'package.template.json'), 'utf8'));
  for (const name of PACKAGES) {
    const key = `@nest-streaming/${name}`;
    if (pkg.dependencies[key] !== 'file:TARBALL') throw new Error(`the template does not list ${key}`);
    pkg.dependencies[key] = `file:${tarballOf(name)}`;
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  rmSync(join(dir, 'package.template.json'));

  await mustRun('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: dir,
    timeoutMs: NPM_INSTALL_TIMEOUT_MS,
  });
  await mustRun(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], {
    cwd: dir,
    timeoutMs: 2 * 60_000,
  });
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(
    [...children].map((child) => {
      const closed = new Promise((done) => child.once('close', done));
      child.kill('SIGKILL');
      return closed;
    }),
  );
  if (!dir) return;
  if (process.env.PACKAGE_INSTALL_KEEP === '1') console.log(`scratch app kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `require.resolve` of each name inside the scratch app (in its own Node process): a path, or the error code. */
async function resolveInApp(names: string[]): Promise<Record<string, string>> {
  const script = `const out = {};
for (const n of ${JSON.stringify(names)}) {
  try { out[n] = require.resolve(n); } catch (e) { out[n] = e.code; }
}
console.log(JSON.stringify(out));`;
  const output = await mustRun(process.execPath, ['-e', script], { cwd: dir, timeoutMs: 10_000 });
  return JSON.parse(output) as Record<string, string>;
}

it('installs @nest-streaming/* from the tarballs, into node_modules', async () => {
  const resolved = await resolveInApp(PACKAGES.map((p) => `@nest-streaming/${p}`));
  for (const name of PACKAGES) {
    const installed = join(dir, 'node_modules', '@nest-streaming', name);
    expect(resolved[`@nest-streaming/${name}`]).toMatch(new RegExp(`^${escapeRegExp(installed)}/dist/`));
    expect(realpathSync(installed)).toBe(installed); // a copy, not a link to the workspace
  }
});

it('has none of the optional peers installed', async () => {
  expect(await resolveInApp(OPTIONAL_PEERS)).toEqual({
    ioredis: 'MODULE_NOT_FOUND',
    nats: 'MODULE_NOT_FOUND',
    'better-sqlite3': 'MODULE_NOT_FOUND',
  });
});

it('runs on the local backend: the client joins, sends, receives, and gets the bot and controller messages', async () => {
  const app = await startApp();
  const check = await run(process.execPath, ['dist/check.js'], {
    cwd: dir,
    env: cleanEnv({ APP_URL: app.url, JWT_SECRET }),
    timeoutMs: 30_000,
  });
  expect({ code: check.code, output: check.output }).toEqual({ code: 0, output: expect.any(String) });
  expect(check.output).toMatch(/^bob joined room \S+$/m);
  const summary = /^CHECK OK (.*)$/m.exec(check.output)?.[1];
  expect(summary).toBeDefined();
  expect(JSON.parse(summary!)).toEqual({
    room: expect.any(String),
    sent: expect.any(String),
    reply: { user_id: 'echo-bot', content: 'echo: hello' },
    announcement: { user_id: 'announcer', content: 'from the controller', metadata: { requested_by: 'bob' } },
  });
  expect(app.child.exitCode).toBeNull();
  expect(app.output()).not.toMatch(/ERROR/);
  // Nest's shutdown hooks close the app, then end the process with the same signal.
  app.child.kill('SIGTERM');
  expect(await app.exited).toMatchObject({ signal: 'SIGTERM' });
}, 60_000);

it('with backend redis, stops at start-up naming ioredis and how to install it', async () => {
  const r = await run(process.execPath, ['dist/main.js'], {
    cwd: dir,
    env: cleanEnv({
      JWT_SECRET,
      PORT: '0',
      FORGE_STREAMING_BACKEND: 'redis',
      FORGE_STREAMING_BACKEND_URLS: 'redis://127.0.0.1:1',
    }),
    timeoutMs: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.code).not.toBe(0);
  expect(r.output).toContain('"ioredis"');
  expect(r.output).toContain('npm install ioredis');
  expect(r.output).not.toMatch(/listening on port/);
}, 30_000);
