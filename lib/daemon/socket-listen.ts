/**
 * The daemon's listening socket, created so that nobody but its owner (or
 * the configured group) can open it, from the first instant: the umask is
 * tightened around listen(), then mode and group are set. A stale socket of
 * a dead daemon is removed; a live one is refused. (A socket passed by
 * systemd goes through systemd-activation.ts instead.)
 * @module
 */
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { dirname } from 'node:path';
import { bulkheadError } from '../errors.js';
import type { ResolvedDaemonSettings } from './daemon-settings.js';

/**
 * Listens on `settings.socketPath` with `settings.socketMode` (and group).
 * @throws BulkheadError ERR_DAEMON_RUNNING (`data.socketPath`) when another daemon already listens there
 */
export async function listenOwnerOnly(server: Server, settings: ResolvedDaemonSettings): Promise<void> {
  const path = settings.socketPath;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    const alive = await new Promise<boolean>((resolve) => {
      const probe = createConnection(path);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (alive) throw bulkheadError('ERR_DAEMON_RUNNING', `Another daemon is already listening on ${path}; use it (\`bulkhead ps\`), stop it, or choose another socketPath.`, { socketPath: path });
    unlinkSync(path); // stale: its daemon died without cleaning up
  }
  // The socket file is created with the umask's mode: make it owner-only from the first instant.
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  if (settings.socketGroup !== undefined) chownSync(path, -1, settings.socketGroup);
  chmodSync(path, settings.socketMode);
}
