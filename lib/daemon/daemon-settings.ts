/**
 * Where a daemon listens and keeps its state, from the config file's `daemon`
 * section, command-line overrides, and per-user / system defaults.
 * @module
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { bulkheadError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { CLIENT_ENTRY_PATTERN } from './client-policy.js';

/** The `daemon` section of a config file. */
export interface DaemonSettings {
  /** Unix socket path. @default per-user: `$XDG_RUNTIME_DIR/bulkhead/bulkhead.sock`; root: `/run/bulkhead/bulkhead.sock` */
  socketPath?: string;
  /** Socket permissions as an octal string. @default "0600" (owner only) */
  socketMode?: string;
  /** Group id that owns the socket (with socketMode "0660"). @default none: the daemon's own group */
  socketGroup?: number;
  /** CA, identities and schedule state. @default per-user: `$XDG_STATE_HOME/bulkhead`; root: `/var/lib/bulkhead` */
  stateDir?: string;
  /** Who may use the control protocol (bulkhead.control): entries as in a service's `clients`. @default ["admin"] */
  controlClients?: string[];
  /** From accept to the end of a client's handshake, in ms; a slower client is refused (ERR_AUTH_FAILED, reason "timeout"). @default 5000 */
  handshakeTimeoutMs?: number;
  /** Connections that have not authenticated yet, in all; past it the oldest pending one of the uid holding the most is closed (ERR_TOO_MANY_CONNECTIONS). @default 128 */
  maxUnauthenticated?: number;
  /** Connections that have not authenticated yet, per peer uid; past it that uid's oldest pending one is closed. @default 32 */
  maxUnauthenticatedPerUid?: number;
}

/** Defaults of the handshake limits in {@link DaemonSettings}. */
export const DAEMON_LIMIT_DEFAULTS = { handshakeTimeoutMs: 5000, maxUnauthenticated: 128, maxUnauthenticatedPerUid: 32 } as const;

/** Settings with every default applied. */
export interface ResolvedDaemonSettings {
  socketPath: string;
  socketMode: number;
  socketGroup: number | undefined;
  stateDir: string;
  controlClients: string[];
  handshakeTimeoutMs: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerUid: number;
}

/** True when this process runs as root: it is then a system daemon. */
function isSystem(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The default socket path: per-user agent or system daemon. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (isSystem()) return '/run/bulkhead/bulkhead.sock';
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && runtime !== '') return join(runtime, 'bulkhead', 'bulkhead.sock');
  return join('/tmp', `bulkhead-${process.getuid?.() ?? 'user'}`, 'bulkhead.sock');
}

/** The default state directory. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (isSystem()) return '/var/lib/bulkhead';
  const state = env['XDG_STATE_HOME'];
  return join(state !== undefined && state !== '' ? state : join(homedir(), '.local', 'state'), 'bulkhead');
}

/**
 * Applies defaults and overrides to a config's `daemon` section.
 * @param base - directory relative paths are resolved against (the config file's)
 * @throws BulkheadError `ERR_INVALID_MANIFEST` naming the bad field
 */
export function resolveDaemonSettings(section: unknown, base: string, overrides: Partial<DaemonSettings> = {}, source = 'config'): ResolvedDaemonSettings {
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) {
    throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon must be an object.`, { source, pointer: '/daemon' });
  }
  const s = { ...(section as DaemonSettings | undefined), ...overrides };
  const known = ['socketPath', 'socketMode', 'socketGroup', 'stateDir', 'controlClients', 'handshakeTimeoutMs', 'maxUnauthenticated', 'maxUnauthenticatedPerUid'];
  for (const key of Object.keys(s)) {
    if (!known.includes(key)) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/${key} is not a known field (${known.join(', ')}).${didYouMean(key, known)}`, { source, pointer: `/daemon/${key}` });
  }
  const str = (key: 'socketPath' | 'stateDir' | 'socketMode') => {
    const v = s[key];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/${key} must be a non-empty string.`, { source, pointer: `/daemon/${key}` });
    return v;
  };
  const modeText = str('socketMode') ?? '0600';
  if (!/^0?[0-7]{3}$/.test(modeText)) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/socketMode must be an octal mode like "0600" or "0660".`, { source, pointer: '/daemon/socketMode' });
  const socketMode = parseInt(modeText, 8);
  if ((socketMode & 0o007) !== 0) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/socketMode ${modeText} gives others access; use 0600 or 0660 with socketGroup.`, { source, pointer: '/daemon/socketMode' });
  if (s.socketGroup !== undefined && !Number.isInteger(s.socketGroup)) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/socketGroup must be a numeric gid.`, { source, pointer: '/daemon/socketGroup' });
  const clients = s.controlClients ?? ['admin'];
  const entry = new RegExp(CLIENT_ENTRY_PATTERN);
  if (!Array.isArray(clients) || clients.some((c) => typeof c !== 'string' || !entry.test(c))) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/controlClients must be an array of client entries (identity names, "*", "uid:N", "gid:N", "NAME@uid:N").`, { source, pointer: '/daemon/controlClients' });
  const count = (key: keyof typeof DAEMON_LIMIT_DEFAULTS, max: number): number => {
    const v = s[key] ?? DAEMON_LIMIT_DEFAULTS[key];
    if (!Number.isInteger(v) || v < 1 || v > max) throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /daemon/${key} must be an integer from 1 to ${max}.`, { source, pointer: `/daemon/${key}` });
    return v;
  };
  return {
    socketPath: resolve(base, str('socketPath') ?? defaultSocketPath()),
    socketMode,
    socketGroup: s.socketGroup,
    stateDir: resolve(base, str('stateDir') ?? defaultStateDir()),
    controlClients: clients,
    handshakeTimeoutMs: count('handshakeTimeoutMs', 600_000),
    maxUnauthenticated: count('maxUnauthenticated', 1_000_000),
    maxUnauthenticatedPerUid: count('maxUnauthenticatedPerUid', 1_000_000),
  };
}
