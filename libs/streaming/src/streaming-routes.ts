import { CanActivate, Controller, Provider, Type, UseGuards } from '@nestjs/common';
import { AdminApiController, AdminPageController } from './admin/admin-console.controller';
import { AdminConsoleService } from './admin/admin-console.service';
import { StreamingAdminGuard } from './admin/admin.guard';
import { ServerApiController } from './api/server-api.controller';
import { asyncApiController } from './docs/asyncapi.controller';
import { StreamingConfigError } from './config/streaming-config.error';
import { ENV_PREFIX } from './config/streaming-env';
import { StreamingHealthController } from './health/streaming-health.controller';
import {
  StreamingMetricsController,
  StreamingRouteController,
  StreamingStatsController,
} from './metrics/streaming-observability.controller';
import { StreamingRateLimitGuard } from './security/rate-limit.guard';
import { SseController } from './transports/sse/sse.controller';
import type { StreamingRoutesOptions } from './config/streaming-options.interface';

type RouteKey = 'sse' | 'health' | 'stats' | 'route' | 'metrics' | 'api' | 'asyncapi' | 'admin';

/** Where each route goes when it is `true`, and whether it is on when nothing says. */
const DEFAULTS: Record<RouteKey, { path: string; on: boolean }> = {
  sse: { path: 'sse', on: true },
  health: { path: '_/health/streaming', on: false },
  stats: { path: '_/streaming/stats', on: false },
  route: { path: '_/streaming/route', on: false },
  metrics: { path: 'metrics', on: false },
  api: { path: '_/streaming/api', on: false },
  asyncapi: { path: '_/streaming/asyncapi.json', on: false },
  admin: { path: '_/streaming/admin', on: false },
};

const PATH = /^[A-Za-z0-9_\-.~:/]*$/;

const envName = (key: string): string => `${ENV_PREFIX}ROUTES_${key.toUpperCase()}`;

function fromEnv(key: string, env: NodeJS.ProcessEnv): boolean | string | undefined {
  const raw = env[envName(key)]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return raw;
}

function checkPath(key: string, value: string): string {
  if (!PATH.test(value)) {
    throw new StreamingConfigError(
      `Invalid streaming configuration: routes.${key} (${envName(key)}) = ${JSON.stringify(value)}: must be a URL path of letters, digits and - _ . ~ : /`,
    );
  }
  return value.replace(/^\/+|\/+$/g, '');
}

/** The path of each route that is on (joined with the prefix), from options, then environment, then defaults. */
export function resolveRoutes(
  options: StreamingRoutesOptions = {},
  env: NodeJS.ProcessEnv = process.env,
  context: { apiKeyConfigured?: boolean } = {},
): Partial<Record<RouteKey, string>> {
  const prefixValue = options.prefix ?? fromEnv('prefix', env);
  if (typeof prefixValue === 'boolean') {
    throw new StreamingConfigError(
      `Invalid streaming configuration: routes.prefix (${envName('prefix')}) must be a path`,
    );
  }
  const prefix = checkPath('prefix', prefixValue ?? '');
  const out: Partial<Record<RouteKey, string>> = {};
  for (const key of Object.keys(DEFAULTS) as RouteKey[]) {
    const on = key === 'api' ? context.apiKeyConfigured === true : DEFAULTS[key].on;
    const value = options[key] ?? fromEnv(key, env) ?? on;
    if (value === false) continue;
    if (value !== true && typeof value !== 'string') {
      throw new StreamingConfigError(
        `Invalid streaming configuration: routes.${key} (${envName(key)}) must be a boolean or a path`,
      );
    }
    const path = value === true ? DEFAULTS[key].path : checkPath(key, value);
    out[key] = [prefix, path].filter(Boolean).join('/');
  }
  return out;
}

/** A controller class of `base` mounted at `path` (one class per module import). */
function mount<T>(base: Type<T>, path: string, guards: Array<Type<CanActivate> | CanActivate> = []): Type<T> {
  @Controller(path)
  @UseGuards(...guards)
  class Mounted extends (base as Type<object>) {}
  Object.defineProperty(Mounted, 'name', { value: base.name });
  return Mounted as Type<T>;
}

/** The controllers of the routes that are on. */
export function routeControllers(
  options: StreamingRoutesOptions = {},
  context: { apiKeyConfigured?: boolean } = {},
): Type[] {
  const paths = resolveRoutes(options, process.env, context);
  const guards = options.guards ?? [];
  const out: Type[] = [];
  if (paths.sse !== undefined) out.push(mount(SseController, paths.sse));
  if (paths.health !== undefined) out.push(mount(StreamingHealthController, paths.health));
  if (paths.stats !== undefined) out.push(mount(StreamingStatsController, paths.stats, guards));
  if (paths.route !== undefined) out.push(mount(StreamingRouteController, paths.route, guards));
  if (paths.metrics !== undefined) out.push(mount(StreamingMetricsController, paths.metrics, guards));
  if (paths.api !== undefined) out.push(mount(ServerApiController, paths.api));
  if (paths.asyncapi !== undefined) out.push(mount(asyncApiController(paths.sse), paths.asyncapi));
  if (paths.admin !== undefined) {
    // The page is static and open; its API is behind the admin guard (or the app's), then the rate limit.
    const adminGuards = options.adminGuards?.length ? options.adminGuards : [StreamingAdminGuard];
    out.push(mount(AdminPageController, paths.admin));
    out.push(mount(AdminApiController, `${paths.admin}/api`, [...adminGuards, StreamingRateLimitGuard]));
  }
  return out;
}

/** The providers the routes that are on need beyond the module's own (the admin console's service). */
export function routeProviders(options: StreamingRoutesOptions = {}): Provider[] {
  return resolveRoutes(options).admin !== undefined ? [AdminConsoleService] : [];
}
