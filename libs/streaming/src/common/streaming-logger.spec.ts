import { Logger } from '@nestjs/common';
import { StreamingLogger, configureStreamingLogs, parseLogLevels } from './streaming-logger';

afterEach(() => {
  configureStreamingLogs({ level: 'log', levels: {}, format: 'text', nodeId: undefined });
  jest.restoreAllMocks();
});

describe('StreamingLogger', () => {
  it('follows log_level, and log_levels per logger name with the nearest parent name winning', () => {
    configureStreamingLogs({
      level: 'warn',
      levels: parseLogLevels(['streaming=error', 'streaming.rooms=debug', 'streaming.rooms.history=warn']),
    });
    const rooms = new StreamingLogger('streaming.rooms');
    const moderation = new StreamingLogger('streaming.rooms.moderation');
    const history = new StreamingLogger('streaming.rooms.history');
    const presence = new StreamingLogger('streaming.presence');
    const other = new StreamingLogger('app.other');
    expect([rooms.enabled('debug'), rooms.enabled('verbose')]).toEqual([true, false]);
    expect(moderation.enabled('debug')).toBe(true);
    expect([history.enabled('warn'), history.enabled('log')]).toEqual([true, false]);
    expect([presence.enabled('error'), presence.enabled('warn')]).toEqual([true, false]);
    expect([other.enabled('warn'), other.enabled('log')]).toEqual([true, false]);
  });

  it('passes enabled entries to the Nest logger in text format and drops the others', () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const logger = new StreamingLogger('streaming.presence');
    logger.log('online');
    logger.debug('details');
    expect(log).toHaveBeenCalledWith('online');
    expect(debug).not.toHaveBeenCalled();
    configureStreamingLogs({ levels: { 'streaming.presence': 'debug' } });
    logger.debug('details');
    expect(debug).toHaveBeenCalledWith('details');
  });

  it('writes one JSON object per line in json format, errors with their stack on stderr', () => {
    configureStreamingLogs({ format: 'json', nodeId: 'node-7' });
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const logger = new StreamingLogger('streaming.manager');
    logger.warn('slow consumer');
    logger.error('boom', 'Error: boom\n    at x');
    const warn = JSON.parse(String(out.mock.calls[0][0])) as Record<string, unknown>;
    expect(warn).toMatchObject({
      level: 'warn',
      logger: 'streaming.manager',
      node_id: 'node-7',
      message: 'slow consumer',
    });
    expect(typeof warn.time).toBe('string');
    expect(JSON.parse(String(err.mock.calls[0][0]))).toMatchObject({
      level: 'error',
      message: 'boom',
      stack: 'Error: boom\n    at x',
    });
  });
});
