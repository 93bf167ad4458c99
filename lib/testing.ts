/**
 * `bulkhead/testing`: a kit for users' own tap (or node:test) tests of their
 * services: start a broker (on a temp dir if you like), crash a helper, wait
 * for a state, read a compact status. Every wait is event-driven, none sleeps.
 * @example
 * ```ts
 * const kit = await startBroker({ root: appDir, services: [manifest] });
 * t.teardown(() => kit.close());
 * await kit.broker.connect('svc').call('ping', {});
 * await kit.crash('svc');                    // SIGKILL, resolves once it exited
 * await kit.broker.connect('svc').call('ping', {}); // relaunched
 * t.equal(kit.status('svc').launches, 2);
 * ```
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Broker, type BrokerOptions } from './broker/broker.js';
import type { ExitInfo } from './broker/helper-process.js';
import type { ServiceManifest } from './broker/manifest.js';
import type { ServiceState } from './broker/service-supervisor.js';
import { bulkheadError } from './errors.js';

export { Broker } from './broker/broker.js';
export { ManualClock } from './broker/clock.js';
export type { ExitInfo } from './broker/helper-process.js';
export type { ServiceState } from './broker/service-supervisor.js';

/** Options of {@link startBroker}. */
export interface StartBrokerOptions extends BrokerOptions {
  /** Services to register right away. @default [] */
  services?: ServiceManifest[];
  /**
   * Files to write under the root before starting (path relative to root → contents).
   * With no `root`, a fresh temp dir is created (and removed by close()).
   * @default {}
   */
  files?: Record<string, string | object>;
}

/** The compact status {@link TestBroker.status} returns. */
export interface TestStatus {
  state: ServiceState;
  pid: number | null;
  launches: number;
  crashes: number;
  lastExit: ExitInfo | null;
}

/** A broker plus test conveniences. */
export interface TestBroker {
  /** The real broker. */
  readonly broker: Broker;
  /** Its root directory. */
  readonly root: string;
  /** SIGKILLs the service's helper and resolves with its exit once it is gone. Rejects if none runs. */
  crash(name: string, signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** Resolves when the service is in `state` (at once if it already is). */
  waitFor(name: string, state: ServiceState, timeoutMs?: number): Promise<void>;
  /** Resolves with the next exit of the service's helper. */
  nextExit(name: string, timeoutMs?: number): Promise<ExitInfo>;
  /** State, pid, launch count and last exit. */
  status(name: string): TestStatus;
  /** Closes the broker (stopping every helper) and removes a temp root. */
  close(): Promise<void>;
}

/** Default timeout of the kit's waits. */
export const TEST_WAIT_TIMEOUT_MS = 10_000;

/** Starts a broker for a test. */
// eslint-disable-next-line @typescript-eslint/require-await -- async so that a bad option rejects the promise rather than throwing
export async function startBroker(options: StartBrokerOptions = {}): Promise<TestBroker> {
  const { services = [], files = {}, ...brokerOptions } = options;
  const ownRoot = brokerOptions.root === undefined;
  const root = brokerOptions.root ?? mkdtempSync(join(tmpdir(), 'bulkhead-test-'));
  for (const [path, contents] of Object.entries(files)) {
    const file = join(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, typeof contents === 'string' ? contents : JSON.stringify(contents, null, 2));
  }
  const broker = new Broker({ ...brokerOptions, root });
  for (const manifest of services) broker.register(manifest);

  /** A wait for an event, bounded by `timeoutMs`; `cancel()` drops it (its timer too, which would keep the process up). */
  const waitForEvent = <T>(name: string, what: string, timeoutMs: number, subscribe: (done: (value: T) => void) => { dispose(): void }): Promise<T> & { cancel(): void } => {
    let cancel = (): void => undefined;
    const waiting = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.dispose();
        reject(bulkheadError('ERR_DEADLINE', `${name} did not reach ${what} within ${timeoutMs} ms (state: ${broker.status(name).state}).`));
      }, timeoutMs);
      const sub = subscribe((value) => {
        clearTimeout(timer);
        sub.dispose();
        resolve(value);
      });
      cancel = () => {
        clearTimeout(timer);
        sub.dispose();
      };
    });
    return Object.assign(waiting, { cancel });
  };

  const nextExit = (name: string, timeoutMs = TEST_WAIT_TIMEOUT_MS): Promise<ExitInfo> & { cancel(): void } =>
    waitForEvent<ExitInfo>(name, 'an exit', timeoutMs, (done) => broker.on('exit', (service, info) => {
      if (service === name) done(info);
    }));

  return {
    broker,
    root,
    async crash(name, signal = 'SIGKILL') {
      const exit = nextExit(name);
      if (broker.kill(name, signal) === undefined) {
        // Nothing will exit: without this its 10 s deadline timer kept the caller's process up after its tests.
        exit.cancel();
        throw bulkheadError('ERR_UNKNOWN_SERVICE', `${name} has no running helper to crash.`, { service: name });
      }
      return exit;
    },
    waitFor(name, state, timeoutMs = TEST_WAIT_TIMEOUT_MS) {
      if (broker.status(name).state === state) return Promise.resolve();
      return waitForEvent<undefined>(name, `state "${state}"`, timeoutMs, (done) => broker.on('state', (service, now) => {
        if (service === name && now === state) done(undefined);
      }));
    },
    nextExit,
    status(name) {
      const s = broker.status(name);
      return { state: s.state, pid: s.pid, launches: s.launches, crashes: s.crashes, lastExit: s.lastExit };
    },
    async close() {
      await broker.close();
      if (ownRoot) rmSync(root, { recursive: true, force: true });
    },
  };
}
