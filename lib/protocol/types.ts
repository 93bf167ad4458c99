/**
 * Type-level view of a protocol, so `call('echo', params)` is checked by the
 * compiler. Generate a shape for a protocol file with `bulkhead types`, or
 * write one by hand; {@link AnyProtocol} accepts anything.
 * @module
 */

/**
 * The TypeScript shape of a protocol: params/result per method (plus the
 * item types of a stream method: `yields`, `accepts`), payload per event.
 */
export interface ProtocolShape {
  methods: Record<string, { params: unknown; result: unknown; yields?: unknown; accepts?: unknown }>;
  events: Record<string, unknown>;
}

/** A shape that allows every method and event with untyped data. */
export interface AnyProtocol extends ProtocolShape {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the untyped escape hatch: params and results need no cast, as with an untyped JSON API
  methods: Record<string, { params: any; result: any }>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above, for event payloads
  events: Record<string, any>;
}

/** Method names of a protocol shape. */
export type MethodName<P extends ProtocolShape> = keyof P['methods'] & string;
/** Params type of a method. */
export type ParamsOf<P extends ProtocolShape, M extends MethodName<P>> = P['methods'][M]['params'];
/** Result type of a method. */
export type ResultOf<P extends ProtocolShape, M extends MethodName<P>> = P['methods'][M]['result'];
/** Type of the items a stream method yields (service → caller); `unknown` when it declares none. */
export type YieldsOf<P extends ProtocolShape, M extends MethodName<P>> = P['methods'][M] extends { yields: infer Y } ? Y : unknown;
/** Type of the items a stream method accepts (caller → service); `unknown` when it declares none. */
export type AcceptsOf<P extends ProtocolShape, M extends MethodName<P>> = P['methods'][M] extends { accepts: infer A } ? A : unknown;
/** Event names of a protocol shape. */
export type EventName<P extends ProtocolShape> = keyof P['events'] & string;
/** Payload type of an event. */
export type EventPayload<P extends ProtocolShape, E extends EventName<P>> = P['events'][E];
