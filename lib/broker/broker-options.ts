/**
 * How a `Broker` is configured: its options (checked at construction,
 * unknown keys refused, each message naming the option) and the config file
 * `Broker.fromConfig` reads.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bulkheadError } from '../errors.js';
import { checkFunctionOption, checkOptionsObject, checkStringOption } from '../util/options.js';
import { didYouMean } from '../util/suggest.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire/frame-decoder.js';
import { systemClock, type Clock } from './clock.js';
import type { ServiceManifest } from './manifest.js';
import type { UidRange } from '../sandbox/index.js';

/** Options of a `Broker`. */
export interface BrokerOptions {
  /**
   * The app's directory: entries are relative to it, protocols and profiles live under it.
   * @default process.cwd()
   */
  root?: string;
  /**
   * Where protocol files are.
   * @default `<root>/protocols`
   */
  protocolsDir?: string;
  /**
   * Where sandbox profiles are; bulkhead's shipped profiles are used when a name is not found here.
   * @default `<root>/sandbox-profiles`
   */
  profilesDir?: string;
  /**
   * Largest frame body accepted from a helper (and told to helpers), in bytes: an integer from 64 to 2^32-1.
   * @default 16 MiB ({@link DEFAULT_MAX_FRAME_BYTES})
   */
  maxFrameBytes?: number;
  /**
   * uids (and gids) a root broker gives sandboxed services whose profile names no `user`: one per service.
   * Process-wide: the last broker constructed with this option sets it.
   * @default { first: 0x5A000000, count: 65536 }
   */
  uidRange?: UidRange;
  /**
   * The node binary that runs helpers.
   * @default process.execPath
   */
  nodePath?: string;
  /**
   * Time source of schedules and idle exit; tests pass a `ManualClock` from bulkhead/testing.
   * @default the system clock
   */
  clock?: Clock;
  /**
   * Checks code-signing requirements (`manifest.requirement`) before each
   * launch; throws ERR_CODE_SIGNATURE. The daemon sets it from its CA.
   * @default undefined: a service with a requirement is refused
   */
  verifyCode?: (serviceDir: string, requirement: { signedBy: string }) => void;
  /**
   * Where schedule state (last run times, for missed-run accounting) is kept.
   * Created only when a service has a schedule.
   * @default `<root>/.bulkhead`
   */
  stateDir?: string;
  /**
   * @internal Where this broker runs, for remedy texts (`broker.reset()` vs
   * `bulkhead kickstart`). `bulkhead daemon` sets 'daemon'.
   * @default 'embedded'
   */
  mode?: 'embedded' | 'daemon';
  /**
   * Helper-to-helper calls (`connects`) go over a direct channel the broker
   * hands both helpers (docs/wire.md, "Helper-to-helper hand-off"); false
   * routes every such call through the broker, as before.
   * @default true
   */
  directConnects?: boolean;
}

/** Shape of a config file read by `Broker.fromConfig`. */
export interface BrokerConfig {
  /** Root, relative to the config file's directory. @default the config file's directory */
  root?: string;
  /** The broker's frame limit ({@link BrokerOptions.maxFrameBytes}). @default 16 MiB */
  maxFrameBytes?: number;
  services: ServiceManifest[];
  /** Daemon settings, read by `bulkhead daemon` (ignored by an embedded broker). @default {} (every setting at its default) */
  daemon?: Record<string, unknown>;
}

/** The option names a `Broker` accepts. */
export const BROKER_OPTION_NAMES = ['root', 'protocolsDir', 'profilesDir', 'maxFrameBytes', 'uidRange', 'nodePath', 'clock', 'verifyCode', 'stateDir', 'mode', 'directConnects'] as const satisfies readonly (keyof BrokerOptions)[];

/** {@link BrokerOptions} with every default applied and every path absolute. */
export interface ResolvedBrokerOptions {
  root: string;
  protocolsDir: string;
  profilesDir: string;
  maxFrameBytes: number;
  /** Checked by the sandbox's uid pool when the broker applies it. */
  uidRange: UidRange | undefined;
  nodePath: string;
  clock: Clock;
  verifyCode: BrokerOptions['verifyCode'];
  stateDir: string;
  mode: 'embedded' | 'daemon';
  directConnects: boolean;
}

const WHERE = 'new Broker(options)';

/**
 * Checks a Broker's options and applies the defaults.
 * @throws BulkheadError `ERR_INVALID_OPTION` naming the option (an unknown key included)
 */
export function resolveBrokerOptions(input: BrokerOptions | undefined): ResolvedBrokerOptions {
  const options = checkOptionsObject(input, BROKER_OPTION_NAMES, WHERE);
  const root = resolve(checkDir(options.root ?? process.cwd(), 'root'));
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 64 || maxFrameBytes > 0xffffffff) {
    throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: maxFrameBytes must be an integer from 64 to 2^32-1, got ${String(options.maxFrameBytes)}.`, { option: 'maxFrameBytes' });
  }
  const clock = options.clock ?? systemClock;
  if (typeof (clock as Partial<Clock> | null)?.now !== 'function' || typeof clock.setTimer !== 'function') {
    throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: clock must have now() and setTimer() (systemClock, or a ManualClock from bulkhead/testing).`, { option: 'clock' });
  }
  return {
    root,
    protocolsDir: resolve(root, checkStringOption(options.protocolsDir, 'protocolsDir', WHERE, 'a directory path') ?? 'protocols'),
    profilesDir: resolve(root, checkStringOption(options.profilesDir, 'profilesDir', WHERE, 'a directory path') ?? 'sandbox-profiles'),
    maxFrameBytes,
    uidRange: options.uidRange,
    nodePath: checkStringOption(options.nodePath, 'nodePath', WHERE, 'the path of a node binary') ?? process.execPath,
    clock,
    verifyCode: checkFunctionOption(options.verifyCode, 'verifyCode', WHERE),
    stateDir: resolve(root, checkStringOption(options.stateDir, 'stateDir', WHERE, 'a directory path') ?? '.bulkhead'),
    mode: options.mode === 'daemon' ? 'daemon' : 'embedded',
    directConnects: checkBooleanOption(options.directConnects, 'directConnects') ?? true,
  };
}

function checkBooleanOption(value: unknown, option: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: ${option} must be true or false, got ${typeof value}.`, { option });
}

function checkDir(dir: unknown, option: string): string {
  if (typeof dir !== 'string' || dir === '') throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: ${option} must be a directory path.`, { option });
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: ${option} ${dir} is not a directory.`, { option });
  return dir;
}

/**
 * Reads and checks a config file's outer shape (each manifest is checked at registration).
 * @returns the absolute file, the absolute root, and the parsed config
 * @throws BulkheadError `ERR_INVALID_MANIFEST`
 */
export function readBrokerConfig(path: string): { file: string; root: string; config: BrokerConfig } {
  const file = resolve(path);
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bulkheadError('ERR_INVALID_MANIFEST', `Cannot read config ${file}: ${(err as Error).message}`, { source: file, pointer: '/' }, err);
  }
  if (typeof config !== 'object' || config === null || !Array.isArray((config as BrokerConfig).services)) {
    throw bulkheadError('ERR_INVALID_MANIFEST', `Config ${file}: /services must be an array of service manifests.`, { source: file, pointer: '/services' });
  }
  const knownKeys = ['root', 'maxFrameBytes', 'services', 'daemon', '$schema'];
  for (const key of Object.keys(config)) {
    if (!knownKeys.includes(key)) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `Config ${file}: /${key} is not a known field (root, maxFrameBytes, services, daemon).${didYouMean(key, knownKeys)}`, { source: file, pointer: `/${key}` });
    }
  }
  const root = (config as BrokerConfig).root;
  if (root !== undefined && typeof root !== 'string') {
    throw bulkheadError('ERR_INVALID_MANIFEST', `Config ${file}: /root must be a directory path.`, { source: file, pointer: '/root' });
  }
  return { file, root: resolve(dirname(file), root ?? '.'), config: config as BrokerConfig };
}

/**
 * The services a reload asks for: read from a config file, or taken from a
 * parsed config (JavaScript callers may pass anything, so its shape is checked).
 * `label` names where they came from, for messages.
 * @throws BulkheadError `ERR_INVALID_MANIFEST` when `services` is not an array, or the file's errors
 */
export function reloadServices(config: string | Pick<BrokerConfig, 'services'>): { services: ServiceManifest[]; label: string } {
  if (typeof config === 'string') {
    const read = readBrokerConfig(config);
    return { services: read.config.services, label: read.file };
  }
  const given: unknown = config;
  if (typeof given !== 'object' || given === null || !Array.isArray((given as { services?: unknown }).services)) {
    throw bulkheadError('ERR_INVALID_MANIFEST', 'reload(config): /services must be an array of service manifests.', { source: 'reload()', pointer: '/services' });
  }
  return { services: config.services, label: 'reload()' };
}
