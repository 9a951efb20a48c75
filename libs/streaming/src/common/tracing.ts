import type * as OtelApi from '@opentelemetry/api';

/** Spans are named `streaming.<what>` under this tracer. */
export const TRACER_NAME = '@nest-streaming/streaming';

let api: typeof OtelApi | null | undefined;

/** `@opentelemetry/api` when the app has it installed, else null (looked up once). */
export function otelApi(): typeof OtelApi | null {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as typeof OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

/**
 * Run `fn` in an OpenTelemetry span named `name` when `@opentelemetry/api`
 * is installed (a thrown error is recorded on the span); otherwise just run
 * it. The app's tracer provider decides whether spans are recorded.
 */
export function inSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: () => Promise<T>,
): Promise<T> {
  const otel = otelApi();
  if (!otel) return fn();
  return otel.trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({
        code: otel.SpanStatusCode.ERROR,
        message: err instanceof Error ? err.message : String(err),
      });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * The backend with a span (`streaming.backend.<method>`) around each method
 * call that returns a promise, when `@opentelemetry/api` is installed; the
 * backend itself otherwise (no cost).
 */
export function tracedBackend<T extends object>(backend: T, kind: string): T {
  const otel = otelApi();
  if (!otel) return backend;
  const tracer = otel.trace.getTracer(TRACER_NAME);
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(backend, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]): unknown => {
          const span = tracer.startSpan(`streaming.backend.${prop}`, {
            attributes: { 'streaming.backend': kind },
          });
          let result: unknown;
          try {
            result = otel.context.with(otel.trace.setSpan(otel.context.active(), span), () =>
              method.apply(target, args),
            );
          } catch (err) {
            fail(span, err);
            span.end();
            throw err;
          }
          if (result instanceof Promise) {
            return result.then(
              (v: unknown) => {
                span.end();
                return v;
              },
              (err: unknown) => {
                fail(span, err);
                span.end();
                throw err;
              },
            );
          }
          span.end();
          return result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });

  function fail(span: OtelApi.Span, err: unknown): void {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: otel!.SpanStatusCode.ERROR });
  }
}
