/**
 * Typed events and service names tied to their protocols (#21).
 * Compile time: every `@ts-expect-error` must meet an error, so `npm run build`
 * (tsc over test/) fails if `conn.on('progres', ...)` or a service paired with
 * the wrong protocol starts compiling again. Run time: the typed forms really
 * deliver, through a real helper.
 */
import t from 'tap';
import { Broker, typedServices, type RemoteBroker, type BulkheadError, type Connection, type RegisteredService } from 'bulkhead';
import { FIXTURES } from './helpers.js';

/** The echo fixture's events and the methods used here, as `bulkhead types` would generate them. */
interface EchoProtocol {
  methods: {
    count: { params: { n: number; bad?: boolean }; result: { sent: number } };
    echo: { params: { text: string }; result: { text: string; pid?: number } };
  };
  events: { tick: { i: number }; news: { value: number } };
}

/** Another service's protocol, to pair wrongly. */
interface CrunchProtocol {
  methods: { crunch: { params: { n: number }; result: number } };
  events: { progress: { percent: number } };
}

/** Exact type equality. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

/** `on()` takes the lifecycle names only; protocol events go through `onEvent()` or the typed `event`. */
export function events(conn: Connection<EchoProtocol>): void {
  conn.on('interrupted', (err: BulkheadError) => void err.code);
  conn.on('invalidated', (err: BulkheadError) => void err.code);
  conn.on('error', (err: BulkheadError) => void err.code);
  conn.onEvent('tick', (p) => assertType<Equal<typeof p, { i: number }>>());
  conn.on('event', (name, payload) => {
    // `name` narrows `payload`.
    if (name === 'tick') assertType<Equal<typeof payload, { i: number }>>();
    else assertType<Equal<typeof payload, { value: number }>>();
    // @ts-expect-error not an event of EchoProtocol
    if (name === 'progress') return;
  });
  // @ts-expect-error a protocol event is not a lifecycle name: use onEvent('tick', ...)
  conn.on('tick', () => undefined);
  // @ts-expect-error a misspelt lifecycle name
  conn.on('interupted', () => undefined);
  // @ts-expect-error a misspelt protocol event
  conn.onEvent('tik', () => undefined);
  // @ts-expect-error the payload has no such field
  conn.onEvent('tick', (p) => p.percent);
}

/** Untyped connections keep working, but `on()` still refuses names that never fire. */
export function untypedEvents(broker: Broker): void {
  const any = broker.connect('echo');
  any.onEvent('whatever', (payload) => void payload);
  any.on('event', (name: string, payload) => void [name, payload]);
  // @ts-expect-error compiled before #21 and never fired
  any.on('progress', () => undefined);
}

/** A name tied to its protocol: `register<P>()` returns a typed handle; `typedServices<S>()` infers from the name. */
export function services(broker: Broker): void {
  const echo: RegisteredService<EchoProtocol> = broker.register<EchoProtocol>({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  assertType<Equal<typeof echo, RegisteredService<EchoProtocol>>>();
  assertType<Equal<ReturnType<typeof echo.connect>, Connection<EchoProtocol>>>();
  // @ts-expect-error the handle's connection speaks EchoProtocol, not CrunchProtocol
  const wrongHandle: Connection<CrunchProtocol> = echo.connect();
  void wrongHandle;

  const app = typedServices<{ echo: EchoProtocol; crunch: CrunchProtocol }>(broker);
  assertType<Equal<ReturnType<typeof app.connect<'echo'>>, Connection<EchoProtocol>>>();
  const crunch = app.connect('crunch');
  assertType<Equal<typeof crunch, Connection<CrunchProtocol>>>();
  // @ts-expect-error the trap of #21: a protocol type argument no longer overrides the name's protocol
  app.connect<CrunchProtocol>('echo');
  // @ts-expect-error a name the app did not declare
  app.connect('inspect');
  // @ts-expect-error a name paired with the wrong protocol
  const wrong: Connection<CrunchProtocol> = app.connect('echo');
  void wrong;

  // A daemon client's RemoteBroker is wrapped the same way.
  const remote = typedServices<{ echo: EchoProtocol }>(undefined as unknown as RemoteBroker);
  assertType<Equal<ReturnType<typeof remote.connect<'echo'>>, Connection<EchoProtocol>>>();

  // An interface map works as well as a type literal.
  interface AppServices {
    echo: EchoProtocol;
  }
  assertType<Equal<ReturnType<typeof typedServices<AppServices>>['connect'] extends (name: 'echo') => Connection<EchoProtocol> ? true : false, true>>();
}

t.test('the typed forms deliver: onEvent, the narrowed event, a register() handle and typedServices', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  const handle = broker.register<EchoProtocol>({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  t.equal(handle.name, 'echo');

  const conn = handle.connect();
  const viaOnEvent: number[] = [];
  const viaEvent: Array<[string, unknown]> = [];
  conn.onEvent('tick', (p) => viaOnEvent.push(p.i));
  conn.on('event', (name, payload) => viaEvent.push([name, payload]));
  t.same(await conn.call('count', { n: 3 }), { sent: 3 });
  t.same(viaOnEvent, [0, 1, 2], 'onEvent delivers each typed payload before the reply');
  t.same(viaEvent, [['tick', { i: 0 }], ['tick', { i: 1 }], ['tick', { i: 2 }]], 'the event listener gets name and payload');

  const app = typedServices<{ echo: EchoProtocol }>(broker);
  const viaServices = app.connect('echo');
  t.equal(viaServices.service, 'echo');
  t.equal((await viaServices.call('echo', { text: 'typed' })).text, 'typed', 'typedServices connects to the named service');
  t.equal(viaServices.listenerCount('event'), 0);
  await Promise.all([conn.close(), viaServices.close()]);
});
