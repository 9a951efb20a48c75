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
 * The OpenTelemetry API when the app has registered a tracer provider (the
 * SDK), else null: with the API installed but no provider, spans would be
 * no-ops, so nothing is wrapped either.
 */
function activeOtel(): typeof OtelApi | null {
  const otel = otelApi();
  if (!otel) return null;
  const provider = otel.trace.getTracerProvider() as { getDelegate?: () => object };
  const delegate = provider.getDelegate ? provider.getDelegate() : provider;
  return delegate.constructor.name === 'NoopTracerProvider' ? null : otel;
}

/**
 * Run `fn` in an OpenTelemetry span named `name` when `@opentelemetry/api`
 * is installed and a tracer provider registered (a thrown error is recorded
 * on the span); otherwise just run it.
 */
export function inSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: () => Promise<T>,
): Promise<T> {
  const otel = activeOtel();
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
 * call, when `@opentelemetry/api` is installed and a tracer provider is
 * registered at the time the module starts (register the SDK before
 * bootstrapping, as OpenTelemetry asks); the backend itself otherwise (no
 * cost).
 */
export function tracedBackend<T extends object>(backend: T, kind: string): T {
  const otel = activeOtel();
  if (!otel) return backend;
  const tracer = otel.trace.getTracer(TRACER_NAME);
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(backend, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      let fn = wrapped.get(value);
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
        wrapped.set(value, fn);
      }
      return fn;
    },
  });

  function fail(span: OtelApi.Span, err: unknown): void {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: otel!.SpanStatusCode.ERROR });
  }
}
