/**
 * Ties service names to their protocol types, so the compiler refuses a
 * connection typed with another service's protocol. Two forms:
 * `broker.register<P>(manifest)` returns a {@link RegisteredService} whose
 * `connect()` is typed by `P`, and {@link typedServices} gives a view whose
 * `connect(name)` infers the protocol from a name → protocol map (and refuses
 * a name that is not in it).
 * @module
 */
import type { Connection, ConnectionOptions } from '../connection/connection.js';
import type { ProtocolShape } from '../protocol/types.js';

/** Whatever opens connections by service name: a `Broker` (or a `RemoteBroker`'s synchronous equivalent). */
export interface ServiceConnector {
  connect<P extends ProtocolShape>(name: string, options?: ConnectionOptions): Connection<P>;
}

/** A registered service, bound to its protocol type `P`. Returned by `broker.register<P>(manifest)`. */
export interface RegisteredService<P extends ProtocolShape> {
  /** The service name from the manifest. */
  readonly name: string;
  /**
   * Opens a connection typed by `P` (same as `broker.connect<P>(name)`).
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE` (unregistered since), `ERR_CLOSED`
   */
  connect(options?: ConnectionOptions): Connection<P>;
}

/**
 * Service name → protocol type, e.g. `{ echo: ComAcmeEchoProtocol; inspect: ComAcmeInspectProtocol }`
 * (a mapped constraint, so an `interface` of names satisfies it too).
 */
export type ServiceTypes<S> = { [K in keyof S]: ProtocolShape };

/** A view of a broker whose `connect(name)` infers the protocol from the name. */
export interface TypedServices<S extends ServiceTypes<S>> {
  /**
   * Opens a connection to `name`, typed by `S[name]`. A name not in `S`, or
   * an explicit protocol type argument, does not compile.
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE`, `ERR_CLOSED`
   */
  connect<N extends keyof S & string>(name: N, options?: ConnectionOptions): Connection<S[N]>;
}

/** @internal Builds the handle `register()` returns. */
export function registeredService<P extends ProtocolShape>(connector: ServiceConnector, name: string): RegisteredService<P> {
  return { name, connect: (options) => connector.connect<P>(name, options) };
}

/**
 * Wraps a broker so `connect(name)` is typed by the app's service map:
 * `const services = typedServices<{ inspect: InspectProtocol }>(broker);
 * const inspect = services.connect('inspect'); // Connection<InspectProtocol>`.
 * The map is the app's promise about which protocol each service speaks; the
 * broker still validates every call and event against the real protocol at runtime.
 */
export function typedServices<S extends ServiceTypes<S>>(connector: ServiceConnector): TypedServices<S> {
  return { connect: (name, options) => connector.connect(name, options) };
}
