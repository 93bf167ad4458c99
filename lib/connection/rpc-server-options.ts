/**
 * The hooks and options of an `RpcServer` (rpc-server.ts), split from it
 * so the server's engine reads on its own, as rpc-client-options.ts does for the client.
 * @module
 */
import type { PeerInfo } from '../wire/envelope.js';
import type { BulkheadError } from '../errors.js';
import type { BacklogWatch } from '../wire/backlog-watch.js';
import type { CallGate } from './call-gate.js';

/** Hooks the runtime gives the server. */
export interface RpcServerHooks {
  /** The client said goodbye: finish in-flight calls, then exit. */
  goodbye(): void;
  /** The channel closed. */
  closed(error: BulkheadError | undefined): void;
  /** Call `id` arrived (direct channels report their counts and per-call metrics to the broker). */
  callStarted?(id: number): void;
  /** Call `id` was answered: `code` null for a reply, else the error's code. */
  callSettled?(id: number, code: string | null): void;
  /** Call `id` ended without an answer: the caller cancelled it (or its deadline passed) while it ran or waited. */
  callDropped?(id: number): void;
  /** The client's hello matched (a prewarmed spare is activated by the broker's hello). */
  helloSeen?(): void;
}

/** Options of an `RpcServer`. */
export interface RpcServerOptions {
  /** Include handler stack traces in errors sent to callers (never in production). @default false */
  exposeStacks?: boolean;
  /**
   * A direct channel's one peer, as the broker verified it at hand-off: every
   * call is attributed to it, and a `peer` message on the channel is a
   * protocol violation (a client cannot name itself).
   * @default none: peers come from the broker's `peer` messages, else the embedding app
   */
  peer?: PeerInfo;
  /**
   * Opens a transaction on the helper's broker channel (ctx.keepAlive() of a
   * direct channel's calls); when given, this server sends no `activity` itself.
   * @default transactions of this channel
   */
  openTransaction?: () => () => void;
  /** Extra fields of this server's hello `info` (next to `pid`). @default none */
  helloInfo?: Record<string, unknown>;
  /** Hello only in answer to the client's, with our document if it speaks another compatible version (direct channels). @default false */
  answerHello?: boolean;
  /** Calls the peer may run at once; one more fails with ERR_BACKPRESSURE (direct channels). @default unbounded */
  maxInFlight?: number;
  /** Paces a slow peer (direct channels): while it holds the channel, emit() waits. @default none */
  backlog?: BacklogWatch;
  /**
   * The helper's service-wide bound on handlers running at once (the
   * manifest's maxInFlight / maxQueued), shared by every channel it serves:
   * past it calls wait, past the queue they fail with ERR_BACKPRESSURE.
   * @default none: only this server's own `maxInFlight`
   */
  gate?: CallGate;
}
