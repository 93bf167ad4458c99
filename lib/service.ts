/**
 * `bulkhead/service`: what a helper imports. `serve(protocol, handlers)`
 * answers the broker over fd 3, validates params before a handler runs, and
 * exits when the broker says goodbye (after in-flight calls finish) or when
 * fd 3 closes (the broker died).
 *
 * This entry point must stay small: it never imports the broker, the sandbox
 * layer or node-forge.
 * @example
 * ```ts
 * import { serve } from 'bulkhead/service';
 * serve('com.example.echo', { echo: async ({ text }) => ({ text }) });
 * ```
 * @module
 */
// Not an ESM import: that builds node:fs's facade, whose lazy getters cost a helper ~3.6 ms of start-up (Node 24).
const { writeSync } = process.getBuiltinModule('node:fs');
import { Socket } from 'node:net';
import { bulkheadError } from './errors.js';
import { RpcServer, type Handler, type HandlerContext } from './connection/rpc-server.js';
import { brokerPrecompiled } from './protocol/precompiled.js';
import { runtimeLoad } from './runtime-load.js';
import type { CompiledProtocol } from './protocol/compiled-protocol.js';
import { HELPER_ENV } from './wire/helper-env.js';
import { loadProtocolFile } from './protocol/registry.js';
import type { AcceptsOf, AnyProtocol, ProtocolShape } from './protocol/types.js';
import { encodeItem } from './wire/codec.js';
import { encodeEnvelope } from './wire/envelope.js';
import { encodeFrame } from './wire/frame-decoder.js';
import { FramedChannel } from './wire/framed-channel.js';
import { Connection, type ServiceEndpoint } from './connection/connection.js';
import { RpcClient } from './connection/rpc-client.js';
import { DirectChannels } from './connection/direct-server.js';
import { CallGate } from './connection/call-gate.js';
import { openHelperPipe } from './connection/helper-pipe.js';
import { warmActivationPath } from './connection/spare-warmup.js';
import { PeerLink, requestPeerChannel } from './connection/peer-link.js';
import { ID_RANGE_SIZE } from './wire/envelope.js';
import { BROKER_REQUEST_RANGE, BrokerRequests } from './connection/broker-requests.js';
import type { Endpoint } from './protocol/endpoint-keyword.js';
import { openEndpoint, requestMint, type EndpointReceiver, type MintEndpointOptions } from './connection/endpoint-client.js';

export type { HandlerContext } from './connection/rpc-server.js';
export type { PeerInfo } from './wire/envelope.js';
export type { ProtocolShape, AnyProtocol } from './protocol/types.js';
export { runtimeLoad, type Endpoint, type EndpointReceiver, type MintEndpointOptions };
export { BulkheadError, isBulkheadError, type BulkheadErrorCode } from './errors.js';
export { HELPER_ENV, type HelperEnvName } from './wire/helper-env.js';
export { releaseBytes } from './wire/body-pool.js';

/**
 * Handlers for every method of protocol shape `P`. A method that declares
 * `yields` is an `async function*`: each `yield` sends one item (when the
 * caller has credit for it), and its return value is the result.
 */
export type Handlers<P extends ProtocolShape = AnyProtocol> = {
  [M in keyof P['methods'] & string]: P['methods'][M] extends { yields: infer Y }
    ? (params: P['methods'][M]['params'], ctx: TypedHandlerContext<P, M>) => AsyncIterable<Y> | AsyncGenerator<Y, P['methods'][M]['result'], undefined>
    : (params: P['methods'][M]['params'], ctx: TypedHandlerContext<P, M>) => P['methods'][M]['result'] | Promise<P['methods'][M]['result']>;
};

/** {@link HandlerContext} with `emit` typed by the protocol's events and `input` by the method's `accepts`. */
export interface TypedHandlerContext<P extends ProtocolShape = AnyProtocol, M extends keyof P['methods'] & string = keyof P['methods'] & string> extends HandlerContext {
  emit<E extends keyof P['events'] & string>(name: E, payload: P['events'][E]): Promise<void>;
  readonly input: AsyncIterable<AcceptsOf<P, M>>;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * Runs after goodbye once in-flight calls finished, before the process exits.
   * @default none
   */
  onShutdown?: () => void | Promise<void>;
}

/** The running service, returned by {@link serve}. */
export interface ServiceHandle<P extends ProtocolShape = AnyProtocol> {
  /** Protocol name. */
  readonly protocol: string;
  /**
   * Sends an event to every client of this service. Resolves once the backlog
   * is small again (await it to go at the readers' pace; see ctx.emit()).
   * @throws BulkheadError `ERR_BACKPRESSURE` past the hard bound (emits not awaited)
   */
  emit<E extends keyof P['events'] & string>(name: E, payload: P['events'][E]): Promise<void>;
  /** Handlers running right now. */
  readonly inFlight: number;
  /** Calls with a stream (items in either direction) open right now. */
  readonly openStreams: number;
  /** Opens a transaction that keeps the helper from idle exit; call the returned function to release it. */
  keepAlive(): () => void;
}

let served = false;

/** fd 3, when a prewarmed spare already opened it (see lib/prewarm.ts). */
let handedOver: Socket | undefined;
/** In a prewarmed spare: serve() prepares everything, waits for the socket, then for the broker's hello. */
let waitForHandover = false;
/** This process started as a prewarmed spare: serve() waits for the broker's hello before it answers. */
let inSpare = false;
/** serve()'s start, when it ran in a spare before activation. */
let startServing: ((socket: Socket) => void) | undefined;

/**
 * @internal Used by the prewarm entry before it imports the service module:
 * serve() then loads the protocol and validators at once, takes fd 3 on
 * {@link handOverBrokerSocket} and says hello, but answers (and sends events
 * and heartbeats) only once the broker's hello activates the spare.
 */
export function deferServeUntilHandover(): void {
  waitForHandover = true;
  inSpare = true;
}

/** @internal The wire pieces the prewarm entry writes its "warm" frame with: this module's own instances. */
export const spareWire = { encodeItem, encodeFrame };

/** @internal Used by the prewarm entry once the service module loaded: serve() takes this socket instead of opening fd 3. */
export function handOverBrokerSocket(socket: Socket): void {
  waitForHandover = false;
  if (startServing !== undefined) startServing(socket);
  else handedOver = socket;
}

/** Outbound channel (fd 4) and one client per target service, made on first use. */
let outbound: { channel: FramedChannel; targets: Map<string, RpcClient>; files: Record<string, string>; links: Map<string, PeerLink>; broker: BrokerRequests } | undefined;

/**
 * Opens a connection from this helper to another service. The helper's
 * manifest must list the service in `connects`; the broker refuses anything
 * else with ERR_NOT_PERMITTED, and the target's handlers see this service as
 * `ctx.peer`. Calls go over a direct channel the broker hands both helpers
 * (docs/wire.md, "Helper-to-helper hand-off"), or through the broker where it
 * cannot (no hand-off pipe, or the target's runtime takes no channels).
 * @example
 * ```ts
 * const store = connect<StoreProtocol>('com.example.store');
 * await store.call('put', { key, value });
 * ```
 * @throws BulkheadError `ERR_NOT_PERMITTED` when the manifest has no `connects`
 *   for `service` (no outbound channel, or the service is not among the targets)
 */
export function connect<P extends ProtocolShape = AnyProtocol>(service: string): Connection<P> {
  outbound ??= openOutbound();
  const { channel, targets, files, links } = outbound;
  const file = files[service];
  if (file === undefined) {
    throw bulkheadError('ERR_NOT_PERMITTED', `This helper may not call ${service}: add "${service}" to its manifest's connects (targets: ${Object.keys(files).join(', ') || 'none'}).`, { target: service });
  }
  let rpc = targets.get(service);
  if (rpc === undefined) {
    // One id range per target on the shared channel, so answers find their client.
    rpc = new RpcClient(channel, loadProtocolFile(file, undefined, { eager: false }), { broadcast: () => {}, eventError: () => {} }, { service, idRange: targets.size + 1, skipHello: true, trustPeerCodes: true });
    targets.set(service, rpc);
  }
  const client = rpc;
  let link = links.get(service);
  if (link === undefined && openHelperPipe(Number(process.env[HELPER_ENV.handoffFd] ?? ''))) {
    link = new PeerLink(service, client.protocol, () => client);
    links.set(service, link);
  }
  const direct = link;
  const endpoint: ServiceEndpoint = {
    service,
    protocol: client.protocol,
    // The routed path needs the target's name; a direct channel's helper ignores it.
    callMeta: { service },
    current: () => (direct === undefined ? client : direct.current()),
    acquire: () => (direct === undefined ? Promise.resolve(client) : direct.acquire()),
    detach: () => {},
  };
  return new Connection<P>(endpoint);
}

/**
 * Opens a connection from an endpoint minted for this service (a field typed
 * `Endpoint<'S'>` in a result, params or event it received): the broker checks
 * that this service is the receiver and that S lives, then routes this
 * helper's calls to S as if its manifest `connects` to it, until S's endpoints
 * die (then calls fail with ERR_ENDPOINT_DEAD). Needs the outbound channel,
 * which a helper has when its manifest lists any `connects`.
 * @throws BulkheadError `ERR_ENDPOINT_INVALID`, `ERR_ENDPOINT_NOT_YOURS`, `ERR_ENDPOINT_DEAD`, `ERR_NOT_PERMITTED` (no outbound channel)
 */
export async function connectEndpoint<P extends ProtocolShape = AnyProtocol>(endpoint: Endpoint): Promise<Connection<P>> {
  outbound ??= openOutbound();
  return new Connection<P>(await openEndpoint(outbound, endpoint));
}

/**
 * @internal For tests of the broker's checks: asks the broker for a raw
 * direct channel to `service`, as connect() does on first use (the broker
 * authorizes it the same way); `"routed"` where there is no hand-off.
 */
export function openPeerSocket(service: string): Promise<{ id: number; socket: Socket } | 'routed'> {
  if (!openHelperPipe(Number(process.env[HELPER_ENV.handoffFd] ?? ''))) return Promise.resolve('routed');
  return requestPeerChannel(service);
}

function openOutbound(): NonNullable<typeof outbound> {
  const files = JSON.parse(process.env[HELPER_ENV.connects] ?? '{}') as Record<string, string>;
  let socket: Socket;
  try {
    socket = new Socket({ fd: 4, readable: true, writable: true });
  } catch (err) {
    throw bulkheadError('ERR_NOT_PERMITTED', 'This helper has no outbound channel: its manifest lists no services in connects.', {}, err);
  }
  const channel = new FramedChannel(socket);
  const targets = new Map<string, RpcClient>();
  const broker = new BrokerRequests(channel);
  channel.attach({
    envelope: (e, body) => {
      const id = e.kind === 'reply' || e.kind === 'error' || e.kind === 'item' || e.kind === 'credit' ? e.id : e.kind === 'event' ? e.callId : 0;
      const range = Math.floor(id / ID_RANGE_SIZE);
      if (range === BROKER_REQUEST_RANGE) broker.receive(e);
      else [...targets.values()][range - 1]?.receive(e, body.length);
    },
    closed: () => {
      for (const rpc of targets.values()) rpc.interrupt(bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.'));
      broker.interrupt(bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.'));
    },
  });
  // The broker never closes this channel by itself; it must not keep the helper alive.
  socket.unref();
  return { channel, targets, files, links: new Map(), broker };
}

/**
 * Asks the broker for an endpoint to `service` bound to `receiver`, to return
 * or send in a field the protocol types `{ "x-bulkhead-endpoint": service }`.
 * The receiver opens a connection from it (`broker.connectEndpoint(ep)`, or
 * `daemon.connectEndpoint(ep)`); nobody else can. An endpoint passes on a
 * right this helper holds, so its manifest must `connects` to `service`.
 * @example
 * ```ts
 * serve('com.example.directory', {
 *   open: async (_params, ctx) => ({ store: await mintEndpoint('com.example.store', ctx.peer) }),
 * });
 * ```
 * @throws BulkheadError `ERR_NOT_PERMITTED` (not in connects), `ERR_UNKNOWN_SERVICE`, `ERR_BACKPRESSURE` (too many live endpoints), `ERR_INVALID_OPTION`
 */
export async function mintEndpoint<S extends string>(service: S, receiver: EndpointReceiver, options: MintEndpointOptions = {}): Promise<Endpoint<S>> {
  outbound ??= openOutbound();
  return await requestMint(outbound.broker, service, receiver, options);
}

/**
 * Starts answering calls for `protocol` on fd 3. Call once, at the top level
 * of the helper's entry module.
 * @throws BulkheadError `ERR_LAUNCH_FAILED` when not started by a broker,
 *   `ERR_PROTOCOL_MISMATCH` when the broker's protocol file names another protocol.
 */
export function serve<P extends ProtocolShape = AnyProtocol>(protocol: string, handlers: Handlers<P>, options: ServeOptions = {}): ServiceHandle<P> {
  if (served) throw bulkheadError('ERR_INVALID_OPTION', 'serve() was called twice; a helper serves exactly one protocol.');
  const file = process.env[HELPER_ENV.protocolFile];
  if (file === undefined || file === '') {
    throw bulkheadError('ERR_LAUNCH_FAILED', `serve("${protocol}") must run in a helper launched by a bulkhead broker (${HELPER_ENV.protocolFile} is not set); register the service with a Broker instead of running it directly.`);
  }
  const compiled = helperProtocol(file);
  if (compiled.name !== protocol) {
    const error = bulkheadError('ERR_PROTOCOL_MISMATCH', `This helper calls serve("${protocol}") but its manifest names protocol "${compiled.name}"; make them agree.`, { expected: compiled.name, actual: protocol });
    // Tell the broker why before going: it reports this code instead of a bare launch failure.
    try {
      // (A spare's fd 3 still belongs to the prewarm entry: it just dies, and a plain launch reports this.)
      if (!inSpare) writeSync(3, encodeEnvelope({ kind: 'error', id: 0, error: error.toJSON() }));
    } catch {
      // fd 3 is not usable; the thrown error below still explains it on stderr.
    }
    throw error;
  }
  served = true;
  let server: RpcServer | undefined;
  /** Clients the broker handed to this helper directly (daemon mode), if it may. */
  let direct: DirectChannels | undefined;
  const broadcast = (name: string, payload: unknown): Promise<void> => {
    const sent = [server!.broadcast(name, payload), ...(direct?.broadcast(name, payload) ?? [])];
    return sent.length === 1 ? sent[0]! : Promise.all(sent).then(() => undefined);
  };
  /** Events emitted in a spare before activation, sent once it serves. */
  const early: Array<[string, unknown]> = [];
  /** False in a prewarmed spare until the broker's hello activates it: its server said hello, and nothing else. */
  let active = !inSpare;
  const activated = (): void => {
    active = true;
    for (const [name, payload] of early.splice(0)) void broadcast(name, payload);
  };
  const start = (socket: Socket): void => {
    ({ server, direct } = startServer(socket, compiled, handlers as unknown as Record<string, Handler>, options, active ? undefined : activated));
    if (active) activated();
    // Its hello leaves on the next tick: the code the activation runs is compiled first.
    else warmActivationPath(compiled);
  };
  if (waitForHandover) startServing = start;
  else {
    let socket: Socket;
    try {
      socket = handedOver ?? new Socket({ fd: 3, readable: true, writable: true });
    } catch (err) {
      throw bulkheadError('ERR_LAUNCH_FAILED', `fd 3 is not the broker's socket (${(err as Error).message}); helpers must be launched by a bulkhead broker.`, {}, err);
    }
    start(socket);
  }
  return {
    protocol,
    emit: (name, payload) => {
      if (active && server !== undefined) return broadcast(name, payload);
      if (early.length < MAX_EARLY_EVENTS) early.push([name, payload]);
      else process.stderr.write(`bulkhead: event "${name}" dropped: ${MAX_EARLY_EVENTS} events are already waiting for this prewarmed helper's activation.\n`);
      return Promise.resolve();
    },
    get inFlight() {
      return (server?.inFlight ?? 0) + (direct?.inFlight ?? 0);
    },
    get openStreams() {
      return (server?.openStreams ?? 0) + (direct?.openStreams ?? 0);
    },
    keepAlive: () => {
      if (server === undefined || !active) throw bulkheadError('ERR_INVALID_OPTION', 'keepAlive() before this prewarmed helper was activated; call it from a handler or after the first call.');
      return server.openTransaction();
    },
  };
}

/**
 * The protocol this helper serves, from its file. Validators precompiled by the broker spare it loading ajv
 * at all, and their module's canonical JSON and hash of the document spare it hashing an unchanged file.
 */
function helperProtocol(file: string): CompiledProtocol {
  const precompiled = brokerPrecompiled(file, runtimeLoad);
  if (precompiled === undefined) return loadProtocolFile(file, undefined, { eager: false });
  const { validators, known } = precompiled;
  return loadProtocolFile(file, undefined, { eager: false, trusted: true, validators, ...(known === undefined ? {} : { known }) });
}

/** Events a spare keeps from before its activation (beyond that, they are dropped). */
const MAX_EARLY_EVENTS = 1024;

/**
 * Answers calls on the broker's socket: what serve() does once it has fd 3;
 * and, when the broker gave it a hand-off pipe, on the direct channels it passes.
 * A prewarmed spare's (`activation` given) says hello now, heartbeats once the broker's hello activates it.
 */
function startServer(socket: Socket, compiled: CompiledProtocol, handlers: Record<string, Handler>, options: ServeOptions, activation?: () => void): { server: RpcServer; direct: DirectChannels | undefined } {
  const maxFrameBytes = Number(process.env[HELPER_ENV.maxFrameBytes] ?? '') || undefined;
  const channelOptions = maxFrameBytes === undefined ? {} : { maxFrameBytes };
  const channel = new FramedChannel(socket, channelOptions);
  const exposeStacks = process.env[HELPER_ENV.debug] === '1';
  const handoffFd = Number(process.env[HELPER_ENV.handoffFd] ?? '');
  // One bound on running handlers for every channel, routed and direct (the manifest's maxInFlight / maxQueued).
  const gate = CallGate.fromEnvironment(process.env[HELPER_ENV.maxInFlight], process.env[HELPER_ENV.maxQueued], compiled.name);
  const gated = gate === undefined ? {} : { gate };
  const direct = Number.isInteger(handoffFd) && handoffFd > 2
    ? DirectChannels.open(handoffFd, (ch, hooks, serverOptions) => new RpcServer(ch, compiled, handlers, hooks, serverOptions), channelOptions, {
      exposeStacks,
      ...gated,
      // ctx.keepAlive() on a direct channel holds the helper like any other: through the broker channel.
      openTransaction: () => server.openTransaction(),
    })
    : undefined;
  let exiting = false;
  let waiting = activation; // a spare's activation, until the broker's hello runs it
  const server: RpcServer = new RpcServer(channel, compiled, handlers, {
    goodbye: () => {
      if (exiting) return;
      exiting = true;
      // Calls on direct channels finish too before the helper goes.
      void Promise.all([server.drained(), direct?.retire()])
        .then(() => options.onShutdown?.())
        .finally(() => {
          // Exit once our last replies are flushed to the kernel, not before.
          socket.once('finish', () => process.exit(0));
          setTimeout(() => process.exit(0), 1000).unref();
          channel.end('helper exiting');
          if (socket.writableFinished || socket.destroyed) process.exit(0);
        });
    },
    // The broker is gone (it died, or closed fd 3): nobody can reach us, so exit.
    closed: () => {
      if (!exiting) process.exit(0);
    },
    helloSeen: () => {
      if (waiting !== undefined) startHeartbeat();
      waiting?.();
      waiting = undefined;
    },
  }, { exposeStacks, ...gated, ...(direct === undefined ? {} : { helloInfo: { handoff: true } }) });
  // Sent from this event loop's own timer: a handler that blocks the loop stops it, and the broker sees that.
  const startHeartbeat = (): void => {
    const heartbeatMs = Number(process.env[HELPER_ENV.heartbeatMs] ?? '');
    if (!Number.isInteger(heartbeatMs) || heartbeatMs <= 0) return;
    const heartbeat = setInterval(() => {
      if (channel.open) server.heartbeat();
    }, heartbeatMs);
    heartbeat.unref();
    socket.once('close', () => clearInterval(heartbeat));
  };
  if (waiting === undefined) startHeartbeat();
  return { server, direct };
}
