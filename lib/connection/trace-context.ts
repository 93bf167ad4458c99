/**
 * W3C trace context (`traceparent`, https://www.w3.org/TR/trace-context/)
 * across bulkhead calls. A call carries the caller's `traceparent` in its
 * metadata; the service's handler sees it as `ctx.traceparent`, and every call
 * the handler makes (to services it `connects` to, or anything else through a
 * bulkhead Connection) carries it on, so one trace follows a request from the
 * app through every helper.
 *
 * Where the caller's trace comes from: `CallOptions.traceparent`, else the
 * handler the call is made from (an AsyncLocalStorage set around each
 * handler), else the active OpenTelemetry span when the app has
 * `@opentelemetry/api` installed (an optional peer dependency). With the API
 * present, calls also become spans: a CLIENT span around each call on the
 * caller's side and a SERVER span around each handler, named
 * `<protocol>/<method>`; without an SDK registered no span is started (the
 * API's no-op tracer would only hand the parent's context back).
 * @module
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { lazyRequire } from '../util/lazy-require.js';

/** `version-traceid-parentid-flags`, lower-case hex; all-zero ids are invalid. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** True for a well-formed `traceparent` (version ff and all-zero ids are not). */
export function isTraceparent(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const m = TRACEPARENT.exec(value);
  return m !== null && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!);
}

/**
 * The trace of the handler running now (set by RpcServer around each handler), made by the first handler that runs in
 * a trace: until then no handler's trace was set, so there is none to read. Not at import: on Node 24 and 26 an
 * `AsyncLocalStorage` loads two internal modules, ~0.13 ms of every helper's start-up CPU that most helpers (no
 * traced call) never need (bench/README.md, "Round fourteen: the helper's start-up CPU").
 */
let handlerTrace: AsyncLocalStorage<string | undefined> | undefined;

/** The running handler's trace, if any. */
function handlerTraceNow(): string | undefined {
  return handlerTrace?.getStore();
}

/** Runs `fn` with `traceparent` as the running handler's trace. */
function runWithHandlerTrace<T>(traceparent: string | undefined, fn: () => T): T {
  handlerTrace ??= new (process.getBuiltinModule('node:async_hooks').AsyncLocalStorage)<string | undefined>();
  return handlerTrace.run(traceparent, fn);
}

/** The parts of @opentelemetry/api used here. */
interface OtelApi {
  trace: {
    getTracer(name: string): OtelTracer;
    getActiveSpan(): OtelSpan | undefined;
    getTracerProvider(): unknown;
    setSpan(context: unknown, span: OtelSpan): unknown;
    wrapSpanContext(spanContext: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean }): OtelSpan;
  };
  context: { active(): unknown; with<T>(context: unknown, fn: () => T): T };
  ROOT_CONTEXT: unknown;
  ProxyTracerProvider: abstract new (...args: never[]) => { getDelegateTracer(name: string): unknown };
  SpanKind: { CLIENT: number; SERVER: number };
  SpanStatusCode: { ERROR: number };
}
interface OtelTracer {
  startSpan(name: string, options: { kind: number; attributes?: Record<string, string> }, context?: unknown): OtelSpan;
}
interface OtelSpan {
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
  setStatus(status: { code: number; message?: string }): void;
  setAttribute(key: string, value: string): void;
  end(): void;
}

let otel: OtelApi | null | undefined;

/**
 * Where @opentelemetry/api 1.x keeps what an app registered (tracer provider, context manager).
 * Read without loading the API: a process that registered nothing (every helper that does not
 * trace) never pays for loading it.
 */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

function otelRegistered(kind: 'trace' | 'context'): boolean {
  const registry = (globalThis as Record<symbol, Partial<Record<'trace' | 'context', unknown>> | undefined>)[OTEL_GLOBAL];
  return registry?.[kind] !== undefined;
}

/** @opentelemetry/api when installed (looked up once), else null. */
function otelApi(): OtelApi | null {
  if (otel !== undefined) return otel;
  try {
    // node:module only now, not at import (lib/util/lazy-require.ts): this module is in the helper's bundle.
    otel = lazyRequire(import.meta.url)()('@opentelemetry/api') as OtelApi;
  } catch {
    otel = null;
  }
  return otel;
}

/**
 * True when an OpenTelemetry SDK registered a tracer provider. Without one the API's
 * tracer is a no-op whose span context is the parent's: starting a span would cost
 * ~1 µs per call on each side and change nothing, so bulkhead skips it. Asked on every
 * call (a global lookup), since an app may register its SDK after bulkhead loaded.
 */
function sdkRegistered(api: OtelApi): boolean {
  if (!otelRegistered('trace')) return false;
  const provider = api.trace.getTracerProvider();
  return !(provider instanceof api.ProxyTracerProvider) || provider.getDelegateTracer('bulkhead') !== undefined;
}

/** What a call carries when no span is started: the parent's trace, nothing to end. */
function noSpan(parent: string | undefined): CallSpan {
  return parent === undefined ? NO_SPAN : { traceparent: parent, end: noop };
}
const noop = (): void => undefined;
const NO_SPAN: CallSpan = Object.freeze({ traceparent: undefined, end: noop });

function format(span: { traceId: string; spanId: string; traceFlags: number }): string {
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The traceparent a call made now should carry: explicit, the running handler's, or the active OpenTelemetry span's. */
export function currentTraceparent(explicit?: string): string | undefined {
  if (isTraceparent(explicit)) return explicit;
  const inHandler = handlerTraceNow();
  if (inHandler !== undefined) return inHandler;
  // No context manager registered: the API's no-op one never has an active span.
  if (!otelRegistered('context')) return undefined;
  const span = otelApi()?.trace.getActiveSpan();
  if (span === undefined) return undefined;
  const traceparent = format(span.spanContext());
  return isTraceparent(traceparent) ? traceparent : undefined;
}

/**
 * True when a call made now, with `explicit` as its `traceparent` option, carries no trace and starts no span: no
 * option, no running handler's trace, and nothing registered with OpenTelemetry (its global registry is absent).
 * Then {@link currentTraceparent} is undefined and {@link startClientSpan} inert, so a caller may skip both: one
 * look-up of the global per call instead of two (a miss on `globalThis` is a slow keyed load).
 */
export function untracedCall(explicit: string | undefined): boolean {
  return explicit === undefined && handlerTraceNow() === undefined && (globalThis as Record<symbol, unknown>)[OTEL_GLOBAL] === undefined;
}

/** A span around one call or handler; `end` with the error code, if any. */
export interface CallSpan {
  /** The traceparent to send (the span's own), or the parent's when no tracer runs. */
  readonly traceparent: string | undefined;
  end(errorCode?: string): void;
}

/**
 * Starts the CLIENT span of an outgoing call (when an OpenTelemetry SDK is
 * registered) under `parent`; its context is what the call carries. Its name
 * and attributes are built only then: most calls start no span.
 */
export function startClientSpan(parent: string | undefined, call: { protocol: string; service: string; method: string }): CallSpan {
  if (!otelRegistered('trace')) return noSpan(parent);
  return startSpan('client', `${call.protocol}/${call.method}`, parent, { 'rpc.system': 'bulkhead', 'rpc.service': call.service, 'rpc.method': call.method });
}

/** True when `span` is one that nothing records (ending it does nothing). */
export function isInertSpan(span: CallSpan): boolean {
  return span.end === noop;
}

/**
 * Runs a handler with `traceparent` as the trace of everything it calls, in a
 * SERVER span when @opentelemetry/api is installed. `settle` receives the
 * span's end function.
 */
export function runInTrace<T>(name: string, traceparent: string | undefined, attributes: Record<string, string>, fn: (span: CallSpan) => T): T {
  const api = otelRegistered('trace') ? otelApi() : null;
  if (api === null || !sdkRegistered(api)) return runWithHandlerTrace(traceparent, () => fn(noSpan(traceparent)));
  const span = startSpan('server', name, traceparent, attributes);
  const ctx = api.trace.setSpan(api.context.active(), spans.get(span)!);
  return api.context.with(ctx, () => runWithHandlerTrace(span.traceparent, () => fn(span)));
}

/** True when a handler needs {@link runInTrace}: it has a trace, or an OpenTelemetry SDK is registered. */
export function tracing(traceparent: string | undefined): boolean {
  if (traceparent !== undefined) return true;
  if (!otelRegistered('trace')) return false;
  const api = otelApi();
  return api !== null && sdkRegistered(api);
}

const spans = new WeakMap<CallSpan, OtelSpan>();

function startSpan(kind: 'client' | 'server', name: string, parent: string | undefined, attributes: Record<string, string>): CallSpan {
  const api = otelRegistered('trace') ? otelApi() : null;
  if (api === null || !sdkRegistered(api)) return noSpan(parent);
  const m = parent === undefined ? null : TRACEPARENT.exec(parent);
  const parentContext = m === null
    ? api.context.active()
    : api.trace.setSpan(api.ROOT_CONTEXT, api.trace.wrapSpanContext({ traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16), isRemote: kind === 'server' }));
  const span = api.trace.getTracer('bulkhead').startSpan(name, { kind: kind === 'client' ? api.SpanKind.CLIENT : api.SpanKind.SERVER, attributes }, parentContext);
  const own = format(span.spanContext());
  // The no-op tracer (no SDK registered) gives an invalid context: keep the parent's trace then.
  const result: CallSpan = {
    traceparent: isTraceparent(own) ? own : parent,
    end: (errorCode) => {
      if (errorCode !== undefined) {
        span.setAttribute('bulkhead.error_code', errorCode);
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: errorCode });
      }
      span.end();
    },
  };
  spans.set(result, span);
  return result;
}
