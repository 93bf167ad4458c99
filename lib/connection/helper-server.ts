/**
 * The helper's side of its broker channel (fd 3): the RpcServer that answers on it, the direct
 * channels the broker passes on the hand-off pipe (daemon mode), the heartbeat, and the exit at
 * goodbye or when the broker goes. What `serve()` (lib/service.ts) starts once it has fd 3.
 * Split from lib/service.ts.
 * @module
 */
import type { Socket } from 'node:net';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { FramedChannel } from '../wire/framed-channel.js';
import { RpcServer, type Handler } from './rpc-server.js';
import { DirectChannels } from './direct-server.js';
import { CallGate } from './call-gate.js';

/** What the helper runs at goodbye, after in-flight calls finished and before it exits (serve()'s `onShutdown`). */
export interface ShutdownOptions {
  onShutdown?: () => void | Promise<void>;
}

/**
 * Answers calls on the broker's socket: what serve() does once it has fd 3;
 * and, when the broker gave it a hand-off pipe, on the direct channels it passes.
 * A prewarmed spare's (`activation` given) says hello now, heartbeats once the broker's hello activates it.
 */
export function startServer(socket: Socket, compiled: CompiledProtocol, handlers: Record<string, Handler>, options: ShutdownOptions, activation?: () => void, firstReadFd?: number): { server: RpcServer; direct: DirectChannels | undefined } {
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
  // A cold helper reads what the broker sent before it started (its hello and first call) once the entry module ran, not
  // at the event loop's first turn (FramedChannel.readWaiting). A next tick, not a microtask: Node runs it once the
  // microtasks are drained, so an entry's top-level await that needs no I/O (a binding set after serve()) has finished,
  // as it had when the loop read the call; an await on I/O lets the call in, as the loop did.
  if (firstReadFd !== undefined) process.nextTick(() => channel.readWaiting(firstReadFd));
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
      startHeartbeat();
      waiting?.();
      waiting = undefined;
    },
  }, { exposeStacks, ...gated, ...(direct === undefined ? {} : { helloInfo: { handoff: true } }) });
  // Sent from this event loop's own timer: a handler that blocks the loop stops it, and the broker sees that.
  // Started when the broker's hello is seen, a cold helper's too: Node's timer lists are made on the first timer (~5.7 KB
  // of young objects), and made in serve() they count before the helper's first turn, where a scavenge task posted
  // runs ahead of the first reply (Node 20; bench/README.md, "Round eleven, continued (launch11)"). The broker sends a
  // cold helper its hello at spawn (a spare's with its activation) and starts its watchdog on the helper's hello, so
  // the first beat is late by the helper's first turn at most.
  let beating = false;
  const startHeartbeat = (): void => {
    if (beating) return;
    beating = true;
    const heartbeatMs = Number(process.env[HELPER_ENV.heartbeatMs] ?? '');
    if (!Number.isInteger(heartbeatMs) || heartbeatMs <= 0) return;
    const heartbeat = setInterval(() => {
      if (channel.open) server.heartbeat();
    }, heartbeatMs);
    heartbeat.unref();
    socket.once('close', () => clearInterval(heartbeat));
  };
  return { server, direct };
}
