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
import type { Handler, HandlerContext, RpcServer } from './connection/rpc-server.js';
import { brokerPrecompiled } from './protocol/precompiled.js';
import { runtimeLoad } from './runtime-load.js';
import type { CompiledProtocol } from './protocol/compiled-protocol.js';
import { HELPER_ENV } from './wire/helper-env.js';
import { loadProtocolFile } from './protocol/registry.js';
import type { AcceptsOf, AnyProtocol, ProtocolShape } from './protocol/types.js';
import { encodeItem } from './wire/codec.js';
import { encodeEnvelope } from './wire/envelope.js';
import { encodeFrame } from './wire/frame-decoder.js';
import type { DirectChannels } from './connection/direct-server.js';
import { warmActivationPath } from './connection/spare-warmup.js';
import type { Endpoint } from './protocol/endpoint-keyword.js';
import type { EndpointReceiver, MintEndpointOptions } from './connection/endpoint-client.js';
import { startServer } from './connection/helper-server.js';

export type { HandlerContext } from './connection/rpc-server.js';
export type { PeerInfo } from './wire/envelope.js';
export type { ProtocolShape, AnyProtocol } from './protocol/types.js';
export { runtimeLoad, type Endpoint, type EndpointReceiver, type MintEndpointOptions };
export { connect, connectEndpoint, mintEndpoint, openPeerSocket } from './connection/helper-outbound.js';
export { BulkheadError, isBulkheadError, type BulkheadErrorCode } from './errors.js';
export { HELPER_ENV, type HelperEnvName } from './wire/helper-env.js';
export { releaseBytes } from './wire/body-pool.js';
/** @internal Whether this process has loaded cbor-x yet (lib/wire/codec.ts loads it on first need; test/codec-lazy.test.ts). */
export { cborLoaded } from './wire/codec.js';

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
  const start = (socket: Socket, firstReadFd?: number): void => {
    ({ server, direct } = startServer(socket, compiled, handlers as unknown as Record<string, Handler>, options, active ? undefined : activated, firstReadFd));
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
    // A cold helper's own fd 3: what the broker sent before it started is read at once (FramedChannel.readWaiting).
    start(socket, handedOver === undefined ? 3 : undefined);
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
