/**
 * `untracedCall` lets `Connection.call` skip `currentTraceparent` and `startClientSpan` (round thirteen, cpu13). It is
 * only right while it mirrors their conditions: whenever it says "untraced", the full path must give no traceparent
 * and an inert span. This walks every state those functions read — the call's option, a running handler's trace, and
 * what an app registered with OpenTelemetry (nothing, a context manager, a tracer provider, both, with an active span)
 * — and checks the shortcut against the full path in each. In-memory tier: no helper process.
 */
import t from 'tap';
import * as api from '@opentelemetry/api';
import { currentTraceparent, isInertSpan, runInTrace, startClientSpan, untracedCall } from '../lib/connection/trace-context.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const OTHER = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const CALL = { protocol: 'com.test.trace', service: 'svc', method: 'm' };

/** A context manager that keeps one context per `with` (synchronous use only: enough for this walk). */
function contextManager(): api.ContextManager {
  let active: api.Context = api.ROOT_CONTEXT;
  return {
    active: () => active,
    with(context, fn, thisArg, ...args) {
      const before = active;
      active = context;
      try {
        return fn.call(thisArg, ...args);
      } finally {
        active = before;
      }
    },
    bind: (_context, target) => target,
    enable() { return this; },
    disable() { active = api.ROOT_CONTEXT; return this; },
  };
}

/** A tracer whose spans are real enough to carry a context (what an SDK's would). */
const tracerProvider: api.TracerProvider = {
  getTracer: () => ({
    startSpan: (_name: string, _options?: api.SpanOptions, context?: api.Context) => {
      const parent = context === undefined ? undefined : api.trace.getSpanContext(context);
      return api.trace.wrapSpanContext({ traceId: parent?.traceId ?? 'c'.repeat(32), spanId: 'd'.repeat(16), traceFlags: 1 });
    },
    startActiveSpan: (() => { throw new Error('not used'); }) as never,
  }),
};

type Registered = 'nothing' | 'context' | 'tracer' | 'both' | 'both, active span';
const REGISTERED: readonly Registered[] = ['nothing', 'context', 'tracer', 'both', 'both, active span'];
const EXPLICIT: ReadonlyArray<string | undefined> = [undefined, PARENT, 'not-a-traceparent'];
const IN_HANDLER: ReadonlyArray<'no handler' | 'handler without trace' | 'handler with trace'> = ['no handler', 'handler without trace', 'handler with trace'];

function withRegistered<T>(registered: Registered, fn: () => T): T {
  if (registered === 'context' || registered.startsWith('both')) api.context.setGlobalContextManager(contextManager());
  if (registered === 'tracer' || registered.startsWith('both')) api.trace.setGlobalTracerProvider(tracerProvider);
  try {
    if (registered !== 'both, active span') return fn();
    const span = api.trace.wrapSpanContext({ traceId: 'e'.repeat(32), spanId: 'f'.repeat(16), traceFlags: 1 });
    return api.context.with(api.trace.setSpan(api.context.active(), span), fn);
  } finally {
    api.trace.disable();
    api.context.disable();
    // disable() leaves the registry object on globalThis; a process where nothing was registered has none.
    delete (globalThis as Record<symbol, unknown>)[Symbol.for('opentelemetry.js.api.1')];
  }
}

/** Inside a handler as RpcServer runs one (a SERVER span around it when a tracer is registered). */
function inHandler<T>(state: (typeof IN_HANDLER)[number], fn: () => T): T {
  if (state === 'no handler') return fn();
  return runInTrace('com.test.trace/h', state === 'handler with trace' ? OTHER : undefined, {}, () => fn());
}

t.test('whenever untracedCall says a call is untraced, the full path gives no traceparent and an inert span', async (t) => {
  let shortcuts = 0;
  let traced = 0;
  for (const registered of REGISTERED) {
    for (const explicit of EXPLICIT) {
      for (const handler of IN_HANDLER) {
        const state = `${registered}; option ${explicit ?? 'none'}; ${handler}`;
        const { shortcut, traceparent, inert } = withRegistered(registered, () => inHandler(handler, () => {
          const traceparent = currentTraceparent(explicit);
          const span = startClientSpan(traceparent, CALL);
          return { shortcut: untracedCall(explicit), traceparent: span.traceparent, inert: isInertSpan(span) };
        }));
        if (shortcut) {
          shortcuts++;
          t.equal(traceparent, undefined, `${state}: no traceparent on the full path either`);
          t.ok(inert, `${state}: the full path's span is inert too`);
        } else if (traceparent !== undefined || !inert) traced++;
      }
    }
  }
  // Controls: the walk reached both kinds of state, so the checks above are not vacuous.
  t.equal(shortcuts, 2, 'the shortcut is taken with no option and nothing registered (outside a handler, and in one without a trace)');
  t.ok(traced >= 20, `and the full path carried a trace or a span in ${traced} states`);
});

t.test('control: the states the shortcut must not take are the traced ones', async (t) => {
  t.notOk(untracedCall(PARENT), 'an explicit traceparent');
  t.notOk(inHandler('handler with trace', () => untracedCall(undefined)), 'a running handler\'s trace');
  t.equal(inHandler('handler with trace', () => currentTraceparent(undefined)), OTHER, 'which the full path carries');
  t.notOk(withRegistered('both, active span', () => untracedCall(undefined)), 'an app that registered OpenTelemetry');
  t.equal(withRegistered('both, active span', () => currentTraceparent(undefined)), `00-${'e'.repeat(32)}-${'f'.repeat(16)}-01`, 'whose active span the full path carries');
});
