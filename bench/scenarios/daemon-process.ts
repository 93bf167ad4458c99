/**
 * The daemon of the daemon scenario, in a process of its own (as `bulkhead
 * daemon` would be): starts a Daemon serving the bench echo service, issues a
 * client identity, and sends `{ socketPath, identity }` to its parent over
 * IPC; answers `{ t: "pid", service }` with the pid of the service's helper
 * (`{ t: "pid", pid }`, null when none runs). Exits when the parent disconnects.
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../lib/daemon/daemon.js';
import { FIXTURES } from '../common/report.js';
import { BENCH_LAUNCH } from '../common/transports.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-bench-daemon-'));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', clients: ['bench'], launch: BENCH_LAUNCH }] }));
const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
process.send!({ socketPath: daemon.socketPath, identity: daemon.ca.issue('bench') });
// The parent asks the daemon which process is the helper: guessing from the daemon's process tree
// could pick a short-lived child (a probe) that is gone by the time its /proc/<pid>/stat is read.
process.on('message', (m: { t?: unknown; service?: unknown }) => {
  if (m.t === 'pid' && typeof m.service === 'string') process.send!({ t: 'pid', pid: daemon.broker.status(m.service).pid });
});
process.on('disconnect', () => {
  void daemon.close().finally(() => {
    rmSync(work, { recursive: true, force: true });
    process.exit(0);
  });
});
