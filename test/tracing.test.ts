/**
 * Trace context across calls (W3C traceparent in call metadata, on through
 * `connects`), OpenTelemetry spans when @opentelemetry/api is installed, and
 * the diagnostics_channel events tools subscribe to.
 */
import t from 'tap';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Broker, DIAGNOSTICS_CHANNELS } from 'bulkhead';
import { FIXTURES } from './helpers.js';

const broker = new Broker({ root: FIXTURES });
t.teardown(() => broker.close());
broker.register({ name: 'front', entry: './trace-service.js', protocol: 'com.test.trace', connects: ['back'] });
broker.register({ name: 'back', entry: './trace-service.js', protocol: 'com.test.trace' });

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

t.test('traceparent travels caller → helper → the service it connects to', async (t) => {
  const front = broker.connect('front');
  const r = await front.call('relay', { service: 'back' }, { traceparent: PARENT });
  t.equal(r.mine, PARENT, 'the handler sees the caller\'s traceparent as ctx.traceparent');
  t.equal(r.downstream, PARENT, 'a call it makes through connects carries it on, without being told');
  const none = await front.call('trace', {});
  t.equal(none.traceparent, null, 'control: a call without a trace carries none');
  const bad = await front.call('trace', {}, { traceparent: '00-XYZ-bad-01' });
  t.equal(bad.traceparent, null, 'a malformed traceparent is dropped (W3C: ignore it), not an error');
});

t.test('with an OpenTelemetry tracer registered, a call is a CLIENT span whose context the helper receives', async (t) => {
  const api = await import('@opentelemetry/api');
  const ended: Array<{ name: string; kind: number; traceId: string; spanId: string; parentSpanId: string | undefined; status: number | undefined }> = [];
  let next = 1;
  // A minimal recording tracer (no SDK needed): real span ids, parent taken from the context it is given.
  const tracer = {
    startSpan(name: string, options: { kind?: number }, context?: unknown) {
      const parent = context === undefined ? undefined : api.trace.getSpanContext(context as never);
      const spanContext = { traceId: parent?.traceId ?? 'a'.repeat(32), spanId: (next++).toString(16).padStart(16, '0'), traceFlags: 1 };
      let status: number | undefined;
      return {
        spanContext: () => spanContext,
        setStatus: (s: { code: number }) => { status = s.code; },
        setAttribute: () => undefined,
        end: () => ended.push({ name, kind: options.kind ?? 0, traceId: spanContext.traceId, spanId: spanContext.spanId, parentSpanId: parent?.spanId, status }),
      };
    },
  };
  api.trace.setGlobalTracerProvider({ getTracer: () => tracer as never });
  t.teardown(() => api.trace.disable());
  const r = await broker.connect('back').call('trace', {}, { traceparent: PARENT });
  const span = ended.find((s) => s.name === 'com.test.trace/trace');
  t.ok(span, 'a span named <protocol>/<method> ended with the call');
  t.equal(span!.kind, api.SpanKind.CLIENT);
  t.equal(span!.traceId, PARENT.split('-')[1], 'in the caller\'s trace');
  t.equal(span!.parentSpanId, PARENT.split('-')[2], 'child of the caller\'s span');
  t.equal(r.traceparent, `00-${span!.traceId}-${span!.spanId}-01`, 'the helper got the CLIENT span as its parent');
  await broker.connect('back').call('relay', { service: 'nowhere' }).catch(() => undefined);
  const failed = ended.find((s) => s.name === 'com.test.trace/relay');
  t.equal(failed?.status, api.SpanStatusCode.ERROR, 'a failed call\'s span has status ERROR');
});

t.test('inside a helper with a tracer: the handler is a SERVER span, its calls through connects CLIENT spans under it', async (t) => {
  const api = await import('@opentelemetry/api');
  const front = broker.connect('front');
  t.same(await front.call('record', {}), { ok: true });
  const r = await front.call('relay', { service: 'back' }, { traceparent: PARENT });
  const { spans } = await front.call('spans', {}) as { spans: Array<{ name: string; kind: number; traceId: string; spanId: string; parentSpanId: string | null }> };
  const server = spans.find((s) => s.name === 'com.test.trace/relay');
  const client = spans.find((s) => s.name === 'com.test.trace/trace');
  t.equal(server?.kind, api.SpanKind.SERVER, 'the handler ran in a SERVER span');
  t.equal(server?.traceId, PARENT.split('-')[1], 'in the caller\'s trace');
  t.equal(server?.parentSpanId, PARENT.split('-')[2], 'child of the caller\'s span');
  t.equal(client?.kind, api.SpanKind.CLIENT, 'its outbound call is a CLIENT span');
  t.equal(client?.parentSpanId, server?.spanId, 'child of the SERVER span');
  t.equal(r.downstream, `00-${PARENT.split('-')[1]}-${client!.spanId}-01`, 'the downstream service got the CLIENT span as its parent');
});

t.test('diagnostics_channel publishes launch, call and exit', async (t) => {
  const seen: Record<string, Array<Record<string, unknown>>> = { launch: [], call: [], exit: [] };
  const listeners = Object.fromEntries(Object.entries(DIAGNOSTICS_CHANNELS).map(([key, name]) => {
    const listener = (message: unknown) => seen[key]!.push(message as Record<string, unknown>);
    subscribe(name, listener);
    return [name, listener];
  }));
  t.teardown(() => {
    for (const [name, listener] of Object.entries(listeners)) unsubscribe(name, listener);
  });
  const local = new Broker({ root: FIXTURES });
  t.teardown(() => local.close());
  local.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  await local.connect('echo').call('echo', { text: 'hi' });
  const pid = local.status('echo').pid;
  local.kill('echo');
  await new Promise<void>((resolve) => local.once('exit', () => resolve()));
  t.same(seen['launch']!.filter((m) => m['service'] === 'echo').map((m) => m['pid']), [pid]);
  const call = seen['call']!.find((m) => m['service'] === 'echo');
  t.equal(call?.['method'], 'echo');
  t.equal(call?.['code'], null);
  t.ok(typeof call?.['seconds'] === 'number' && (call['seconds'] as number) > 0);
  const exit = seen['exit']!.find((m) => m['service'] === 'echo');
  t.equal(exit?.['pid'], pid);
  t.equal(exit?.['signal'], 'SIGKILL');
  t.equal(exit?.['requested'], false);
  // The embedded broker's metrics() says the same, in Prometheus text.
  const text = await local.metrics();
  t.match(text, /^# TYPE bulkhead_calls_total counter$/m);
  t.match(text, /^bulkhead_calls_total\{service="echo"\} 1$/m);
  t.match(text, /^bulkhead_crashes_total\{service="echo",reason="signal SIGKILL"\} 1$/m);
  t.match(text, /^bulkhead_launches_total\{service="echo"\} 1$/m);
  t.notMatch(text, /bulkhead_daemon_/, 'no daemon series in an embedded broker');
});
