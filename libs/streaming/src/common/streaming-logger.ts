import { Logger } from '@nestjs/common';

/** The levels of the module's loggers, most severe first. */
export type StreamingLogLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

const RANK: Record<StreamingLogLevel, number> = { error: 0, warn: 1, log: 2, debug: 3, verbose: 4 };

/** What `log_level`, `log_levels` and `log_format` configure (process-wide). */
export interface StreamingLogSettings {
  level: StreamingLogLevel;
  /** Level per logger name; `streaming` also covers `streaming.rooms` unless that has its own. */
  levels: Record<string, StreamingLogLevel>;
  format: 'text' | 'json';
  /** Added to every JSON line. */
  nodeId?: string;
}

const settings: StreamingLogSettings = { level: 'log', levels: {}, format: 'text' };
let generation = 0;

/**
 * Apply the module's logging options. Settings are process-wide (the last
 * module configured wins): they belong to the process's log output.
 */
export function configureStreamingLogs(next: Partial<StreamingLogSettings>): void {
  Object.assign(settings, next);
  generation++;
}

/** `["streaming.rooms=debug", ...]` (the `log_levels` option) as a map. */
export function parseLogLevels(entries: readonly string[]): Record<string, StreamingLogLevel> {
  const out: Record<string, StreamingLogLevel> = {};
  for (const e of entries) {
    const eq = e.lastIndexOf('=');
    if (eq > 0) out[e.slice(0, eq)] = e.slice(eq + 1) as StreamingLogLevel;
  }
  return out;
}

/**
 * A Nest `Logger` named like the seed's loggers (`streaming.rooms`,
 * `streaming.presence`, ...), whose level is the module's: `log_levels`
 * for its name or the nearest parent name, else `log_level`. With
 * `log_format: json` each entry is one JSON line on stdout (stderr for
 * errors): `{time, level, logger, node_id, message, ...}`; otherwise it goes
 * through the app's Nest logger as usual.
 */
export class StreamingLogger extends Logger {
  private seen = -1;
  private threshold = RANK.log;

  constructor(readonly name: string) {
    super(name);
  }

  /** Whether entries of `level` are written. */
  enabled(level: StreamingLogLevel): boolean {
    if (this.seen !== generation) {
      this.threshold = RANK[levelOf(this.name)];
      this.seen = generation;
    }
    return RANK[level] <= this.threshold;
  }

  override error(message: unknown, ...rest: unknown[]): void {
    if (!this.enabled('error')) return;
    if (settings.format === 'json') return this.json('error', message, rest[0]);
    super.error(message, ...rest);
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    if (!this.enabled('warn')) return;
    if (settings.format === 'json') return this.json('warn', message);
    super.warn(message, ...rest);
  }

  override log(message: unknown, ...rest: unknown[]): void {
    if (!this.enabled('log')) return;
    if (settings.format === 'json') return this.json('log', message);
    super.log(message, ...rest);
  }

  override debug(message: unknown, ...rest: unknown[]): void {
    if (!this.enabled('debug')) return;
    if (settings.format === 'json') return this.json('debug', message);
    super.debug(message, ...rest);
  }

  override verbose(message: unknown, ...rest: unknown[]): void {
    if (!this.enabled('verbose')) return;
    if (settings.format === 'json') return this.json('verbose', message);
    super.verbose(message, ...rest);
  }

  private json(level: StreamingLogLevel, message: unknown, stack?: unknown): void {
    const entry: Record<string, unknown> = {
      time: new Date().toISOString(),
      level,
      logger: this.name,
    };
    if (settings.nodeId) entry.node_id = settings.nodeId;
    if (message instanceof Error) {
      entry.message = message.message;
      entry.stack = message.stack;
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(entry, message);
    } else {
      entry.message = String(message);
    }
    if (typeof stack === 'string') entry.stack = stack;
    (level === 'error' ? process.stderr : process.stdout).write(`${JSON.stringify(entry)}\n`);
  }
}

function levelOf(name: string): StreamingLogLevel {
  for (let n = name; ;) {
    const own = settings.levels[n];
    if (own) return own;
    const dot = n.lastIndexOf('.');
    if (dot === -1) return settings.level;
    n = n.slice(0, dot);
  }
}
