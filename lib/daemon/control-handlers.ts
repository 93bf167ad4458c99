/**
 * The handlers of `bulkhead.control`, the daemon's own protocol (list,
 * status, kickstart, stop, reload, restart, logs): what `bulkhead ps`,
 * `kickstart`, `logs` ... call once the control client is authenticated and
 * admitted. Split from daemon.ts, which accepts and routes connections; this
 * file is what an admin may ask of the running broker.
 * @module
 */
import type { Broker, ReloadResult } from '../broker/broker.js';
import type { Handler } from '../connection/rpc-server.js';
import type { PeerInfo } from '../wire/envelope.js';
import type { LogStore } from './log-store.js';

/** What the control handlers need of the daemon. */
export interface ControlHost {
  readonly broker: Broker;
  /** Helpers' output and the daemon's events: what `logs` reads. */
  readonly logs: LogStore;
  /** Writes one structured log entry (who kickstarted, stopped, ...). */
  log(entry: Record<string, unknown> & { event: string }): void;
  /** The daemon's own line of `list`: pid, socket, start time and its connection status. */
  describe(): object;
  /** Re-reads the config atomically (Daemon.reload). */
  reload(): Promise<ReloadResult>;
}

/** The control protocol's handlers for one admitted control client (`peer`, named in the log lines it causes). */
export function controlHandlers(host: ControlHost, peer: PeerInfo): Record<string, Handler> {
  const { broker, logs } = host;
  return {
    list: () => ({ services: broker.status(), daemon: host.describe() }),
    status: ({ name }: { name: string }) => broker.status(name),
    kickstart: async ({ name, restart }: { name: string; restart?: boolean }) => {
      const before = broker.status(name); // ERR_UNKNOWN_SERVICE before anything is logged
      host.log({ event: 'kickstart', service: name, by: peer.name, restart: restart === true });
      // "Start it now" includes a service whose crash-loop breaker tripped (launchctl kickstart does the same).
      if (before.state === 'failed') broker.reset(name);
      if (restart === true) await broker.stop(name);
      await broker.kickstart(name);
      return { pid: broker.status(name).pid };
    },
    stop: async ({ name }: { name: string }) => {
      const wasRunning = broker.status(name).pid !== null;
      host.log({ event: 'stop', service: name, by: peer.name });
      await broker.stop(name);
      return { stopped: wasRunning };
    },
    reload: () => host.reload(),
    restart: async ({ name }: { name: string }) => {
      broker.status(name); // ERR_UNKNOWN_SERVICE before anything is logged
      host.log({ event: 'restart', service: name, by: peer.name });
      await broker.restart(name);
      return { pid: broker.status(name).pid };
    },
    logs: async ({ service, after, limit, waitMs, events }: { service?: string; after?: number; limit?: number; waitMs?: number; events?: boolean }, ctx) => {
      // ERR_UNKNOWN_SERVICE for a typo rather than silence (a removed service's lines are still kept).
      if (service !== undefined && !logs.knows(service)) broker.status(service);
      if (after !== undefined && waitMs !== undefined) await logs.wait(after, waitMs, service, ctx.signal);
      return logs.query({ service, after, limit, events });
    },
  };
}
