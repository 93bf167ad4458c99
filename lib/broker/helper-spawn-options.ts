/**
 * What the supervisor hands `HelperProcess.spawn`: the launch plan,
 * limits, and the hooks a helper reports through (its output lines, settled
 * calls, its exit before pending calls reject). Split from helper-process.ts
 * so the contract between supervisor and helper reads on one page.
 * @module
 */
import type { CallTally } from './call-tally.js';
import type { HandoffPipe } from './handoff-pipe.js';
import type { HelperProcess } from './helper-process.js';
import type { RpcClientHooks } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { SandboxLaunchPlan } from '../sandbox/index.js';
import type { Envelope } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import type { ExitInfo } from './exit-report.js';
import type { CallBatch } from '../connection/call-meter.js';

/** Callbacks from a helper process to its supervisor. */
export interface HelperHooks extends RpcClientHooks {
  /** One line of the helper's stdout or stderr. */
  log(stream: 'stdout' | 'stderr', line: string, pid: number): void;
  /**
   * A call to this helper was answered (code null: a reply; else the error's
   * code), or failed with ERR_INTERRUPTED because the helper exited. Direct
   * and routed calls alike. Optional (metrics).
   */
  callSettled?(method: string, seconds: number, code: string | null): void;
  /** A prewarmed spare broke the spare's rules (why) and is being killed; it is never used. */
  spareRefused?(why: string): void;
  /** Where this helper counts each call it settles (callSettled's calls, timed or not). Optional (metrics). */
  callTally?: CallTally;
  /**
   * Whether a call sent now must be timed and reported through callSettled
   * (someone observes calls); otherwise it is only counted in callTally.
   * Absent: always.
   */
  callsObserved?: () => boolean;
  /** Calls the helper answered on its direct channels, reported in a batch (durations, codes). Optional (metrics). */
  callBatch?(batch: CallBatch): void;
}

/** Options of `HelperProcess.spawn`. */
export interface HelperSpawnOptions {
  service: string;
  plan: SandboxLaunchPlan;
  protocol: CompiledProtocol;
  maxFrameBytes: number;
  maxInFlight: number;
  maxQueued: number;
  /** Bytes that may wait for the helper to read them before a call fails with ERR_BACKPRESSURE. */
  maxQueuedBytes?: number;
  hooks: HelperHooks;
  /**
   * Start as a prewarmed spare: the process runs bulkhead's prewarm entry,
   * loads the service module and says hello; `HelperProcess.activate` (the
   * broker's hello) makes it serve.
   */
  spare?: boolean;
  /**
   * The helper's channel closed and the broker did not ask for it (it died, or
   * hung up): called at the first sign of its death, before its exit is known.
   */
  channelLost?: () => void;
  /**
   * The broker sent SIGKILL to the helper and did not ask it to stop (broker.kill,
   * the watchdog): its death is certain now, before its channel closes.
   * Called instead of `channelLost` when it comes first (once per helper).
   */
  killed?: () => void;
  /**
   * The helper's channel closed, whoever asked (after `channelLost` when that is called too): called
   * every time, so calls in flight can fail at the close (exit-at-close.ts).
   */
  channelClosed?: () => void;
  /**
   * Give the helper a hand-off pipe (daemon mode), so the broker can pass it
   * direct channels (docs/wire.md, "Hand-off"). Ignored where fd passing is unavailable.
   * @default false
   */
  handoff?: boolean;
  /**
   * With a hand-off pipe: the helper asked on it for a direct channel to
   * `service` (request `req`); answer on `pipe`.
   */
  peerOpen?: (helper: HelperProcess, pipe: HandoffPipe, req: number, service: string) => void;
  /** Given the helper's outbound channel (fd 4) when it may call other services. */
  outbound?: (channel: FramedChannel, pid: number | undefined) => void;
  /** Takes frames that belong to routed daemon clients; returns false for the broker's own. */
  route?: (envelope: Envelope, body: Buffer) => boolean;
  /**
   * How often the helper's runtime sends its heartbeat (BULKHEAD_HEARTBEAT_MS),
   * in ms: the measure of `HelperProcess.unresponsiveMs`.
   */
  heartbeatMs: number;
  /**
   * Kill the helper (reason "watchdog") when nothing came from its event loop
   * for this long after it was ready (launch.watchdogMs). Undefined: no watchdog.
   */
  watchdogMs?: number | undefined;
  /**
   * Told of the exit synchronously, before the helper's pending calls are
   * rejected: a `.catch` of an interrupted call sees the supervisor's new state.
   */
  exiting?: (info: ExitInfo) => void;
}
