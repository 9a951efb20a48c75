/**
 * End-to-end helper: run a real `nats-server` as a child process on a free
 * loopback port, with JetStream storing into its own temporary directory.
 *
 * There is no skipping: when `nats-server` is not installed the helper throws,
 * so a suite that needs NATS fails loudly instead of silently passing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { findBinary, freePort, serverProcess, sleep, workDir } from './server-process';

/** A TCP port that was free a moment ago on 127.0.0.1 (the same as the Redis helper's). */
export { freePort };

export interface NatsServerOptions {
  /** Enable JetStream (`-js -sd <dir>`). Default true. */
  jetstream?: boolean;
  /** JetStream store directory. Default: a fresh temporary directory, removed by `dispose()`. */
  dir?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /**
   * Password users (written to a config file). The first one is also the
   * `no_auth_user`, so that connections without credentials still work while
   * wrong credentials are refused.
   */
  users?: { user: string; password: string }[];
  /** More `nats-server` arguments. */
  extraArgs?: string[];
  /** How long to wait for the server to accept connections. Default 10 s. */
  startTimeoutMs?: number;
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The JetStream store directory. */
  dir: string;
  /** Whether the process is currently running. */
  readonly running: boolean;
  /** Freeze the process (SIGSTOP) and wait until it is stopped: connections stay open but nothing answers. */
  pause(): Promise<void>;
  /** Unfreeze it (SIGCONT). */
  resume(): void;
  /** Stop the server (SIGTERM, also when paused; SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Kill the server at once (SIGKILL): no graceful shutdown, pending requests die with it. */
  crash(): Promise<void>;
  /** Stop (if running) and start again on the same port with the same store. */
  restart(): Promise<void>;
  /** Stop, and remove the directory if the helper created it. */
  dispose(): Promise<void>;
}

export const NATS_SERVER_MISSING = 'nats-server not found: install it with "apt-get install -y nats-server"';

/** Absolute path of `nats-server`: /usr/bin/nats-server, else the first one on PATH. Throws when missing. */
export function findNatsServer(): string {
  return findBinary('nats-server', NATS_SERVER_MISSING);
}

/**
 * One handshake over a raw socket: the server's INFO (with `"jetstream":true`
 * when required), then CONNECT + PING answered by PONG.
 */
function handshakeOnce(port: number, jetstream: boolean, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let sentConnect = false;
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      if (!sentConnect) {
        const end = buf.indexOf('\r\n');
        if (end < 0) return;
        const line = buf.slice(0, end);
        buf = buf.slice(end + 2);
        if (!line.startsWith('INFO ')) return done(false);
        if (jetstream && !/"jetstream"\s*:\s*true/.test(line)) return done(false);
        sentConnect = true;
        socket.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
      }
      if (buf.includes('PONG\r\n')) done(true);
      else if (buf.includes('-ERR')) done(false);
    });
    socket.on('error', () => done(false));
  });
}

/** Start `nats-server` and wait until it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = findNatsServer();
  const jetstream = options.jetstream ?? true;
  const { dir, remove } = workDir('nest-streaming-nats-', options.dir);
  const port = options.port ?? (await freePort());

  let configFile: string | undefined;
  if (options.users && options.users.length > 0) {
    configFile = join(dir, 'nats-server.conf');
    const users = options.users
      .map((u) => `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)} }`)
      .join('\n');
    writeFileSync(
      configFile,
      `authorization {\n  users: [\n${users}\n  ]\n}\nno_auth_user: ${JSON.stringify(options.users[0].user)}\n`,
    );
  }

  const args = (): string[] => {
    const a: string[] = [];
    if (configFile) a.push('-c', configFile);
    a.push('-a', '127.0.0.1', '-p', String(port));
    if (jetstream) a.push('-js', '-sd', join(dir, 'jetstream'));
    return [...a, ...(options.extraArgs ?? [])];
  };

  const server = serverProcess({
    name: 'nats-server',
    binary,
    args,
    cwd: dir,
    port,
    probe: (p) => handshakeOnce(p, jetstream),
    readiness: 'accept connections',
    startTimeoutMs: options.startTimeoutMs ?? 10_000,
  });
  await server.launch();

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return server.child !== null;
    },
    async pause() {
      const proc = server.child;
      if (!proc?.pid) return;
      proc.kill('SIGSTOP');
      // Signals are asynchronous: wait until the kernel reports the process stopped (Linux), or a moment.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline) {
        let state = '';
        try {
          state = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
        } catch {
          await sleep(50);
          return;
        }
        if (state === 'T' || state === 't') {
          await sleep(20); // the other threads of the group stop along
          return;
        }
        await sleep(5);
      }
    },
    resume() {
      server.child?.kill('SIGCONT');
    },
    stop: () => server.stop(),
    crash: () => server.kill(),
    async restart() {
      await server.stop();
      await server.launch();
    },
    async dispose() {
      await server.stop();
      remove();
    },
  };
}
