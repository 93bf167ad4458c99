/**
 * The systemd units `bulkhead unit` writes: a `.service` that runs
 * `bulkhead daemon` with `Type=notify`, and a `.socket` that owns the
 * daemon's Unix socket and starts the service on the first connection (or at
 * boot / login, whichever comes first).
 *
 * Hardening: only directives that leave the daemon able to do its job. The
 * daemon sandboxes its helpers with bubblewrap (user, pid, mount and network
 * namespaces), seccomp and cgroups, and a system daemon may run helpers under
 * their own uids; so namespaces, mounts, setuid/setgid and the cgroup tree
 * stay available (no RestrictNamespaces=, PrivateUsers=, ProtectHostname=,
 * ProtectControlGroups=, CapabilityBoundingSet=), and V8's JIT needs
 * writable-executable memory (no MemoryDenyWriteExecute=). What is left:
 * no_new_privs (helpers set it too), read-only /usr, /boot and /etc, no kernel
 * tunables, modules or logs, no realtime scheduling, no setuid/setgid files,
 * native syscalls only, a private /tmp unless the socket or state is there,
 * an owner-only umask, and `Delegate=yes` so helpers' cgroups nest under the
 * service's. A per-user agent gets the subset a user manager applies without
 * privileges (it would otherwise switch on PrivateUsers= implicitly).
 * @module
 */
import { dirname } from 'node:path';

/** What the units describe. */
export interface UnitSpec {
  /** Per-user agent (`systemctl --user`) or system daemon. */
  scope: 'user' | 'system';
  /** Base name of both units (`<name>.service`, `<name>.socket`). */
  name: string;
  /** Absolute node binary. */
  nodePath: string;
  /** Absolute path of bulkhead's CLI (dist/lib/cli/main.js). */
  cliPath: string;
  /** Absolute config file. */
  configPath: string;
  /** Absolute socket path (the config's daemon.socketPath, or the default). */
  socketPath: string;
  /** Socket mode, e.g. 0o600. */
  socketMode: number;
  /** Group id owning the socket, when configured. */
  socketGroup: number | undefined;
  /** Absolute state directory. */
  stateDir: string;
  /** Watchdog interval in seconds (WatchdogSec=); 0 disables. @default 30 */
  watchdogSec?: number;
}

/** The two unit files, by file name. */
export interface GeneratedUnits {
  service: { file: string; text: string };
  socket: { file: string; text: string };
}

/** The units' base name when none is given. */
export const DEFAULT_UNIT_NAME = 'bulkhead';

/**
 * Quotes one word of a systemd command line: specifiers (`%`) and variables
 * (`$`) are escaped, and a word with spaces, quotes or backslashes is
 * double-quoted with C-style escapes (systemd.service(5), "Command lines").
 */
export function quoteExecArg(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A value for a path directive (ListenStream=, ReadWritePaths=): specifiers escaped; spaces are allowed as-is. */
function pathValue(path: string): string {
  return path.replace(/%/g, '%%');
}

/** Writes both units' text. */
export function generateUnits(spec: UnitSpec): GeneratedUnits {
  const system = spec.scope === 'system';
  const exec = [spec.nodePath, spec.cliPath, 'daemon', '--config', spec.configPath, '--socket', spec.socketPath, '--state-dir', spec.stateDir].map(quoteExecArg).join(' ');
  const watchdog = spec.watchdogSec ?? 30;
  const inTmp = (p: string) => p === '/tmp' || p.startsWith('/tmp/') || p === '/var/tmp' || p.startsWith('/var/tmp/');
  const hardening = system
    ? [
        'NoNewPrivileges=yes',
        'ProtectSystem=full',
        'ProtectKernelTunables=yes',
        'ProtectKernelModules=yes',
        'ProtectKernelLogs=yes',
        'ProtectClock=yes',
        'RestrictRealtime=yes',
        'RestrictSUIDSGID=yes',
        'LockPersonality=yes',
        'SystemCallArchitectures=native',
        ...(inTmp(spec.socketPath) || inTmp(spec.stateDir) ? [] : ['PrivateTmp=yes']),
        'UMask=0077',
        'Delegate=yes',
      ]
    : ['NoNewPrivileges=yes', 'RestrictRealtime=yes', 'RestrictSUIDSGID=yes', 'LockPersonality=yes', 'SystemCallArchitectures=native', 'UMask=0077'];
  const what = system ? 'system daemon' : 'per-user agent';
  const service = [
    `# Written by \`bulkhead unit --${spec.scope}\` for ${spec.configPath}.`,
    '[Unit]',
    `Description=bulkhead broker (${what}) for ${spec.configPath}`,
    `Requires=${spec.name}.socket`,
    `After=${spec.name}.socket`,
    '',
    '[Service]',
    // The daemon sends READY=1 from its own pid once it serves (NotifyAccess=main is the default; said for the reader).
    'Type=notify',
    'NotifyAccess=main',
    `ExecStart=${exec}`,
    'Restart=on-failure',
    'RestartSec=2s',
    'TimeoutStartSec=60s',
    // SIGTERM to the daemon, which stops its helpers gracefully; anything left after the timeout is killed.
    'KillMode=mixed',
    'TimeoutStopSec=30s',
    ...(watchdog > 0 ? [`WatchdogSec=${watchdog}s`] : []),
    ...hardening,
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    `Also=${spec.name}.socket`,
    '',
  ].join('\n');
  const socket = [
    `# Written by \`bulkhead unit --${spec.scope}\` for ${spec.configPath}.`,
    '[Unit]',
    `Description=bulkhead broker socket (${what}) for ${spec.configPath}`,
    '',
    '[Socket]',
    `ListenStream=${pathValue(spec.socketPath)}`,
    `SocketMode=${spec.socketMode.toString(8).padStart(4, '0')}`,
    ...(spec.socketGroup === undefined ? [] : [`SocketGroup=${spec.socketGroup}`]),
    // The socket's directory: owner-only, like the daemon makes it (group-searchable when the socket is shared).
    `DirectoryMode=${spec.socketGroup === undefined ? '0700' : '0750'}`,
    'RemoveOnStop=yes',
    `Service=${spec.name}.service`,
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n');
  return { service: { file: `${spec.name}.service`, text: service }, socket: { file: `${spec.name}.socket`, text: socket } };
}

/** The commands that install the units written to `dir`. */
export function installSteps(scope: 'user' | 'system', name: string, dir: string): string[] {
  const ctl = scope === 'user' ? 'systemctl --user' : 'systemctl';
  const standard = scope === 'user' ? '~/.config/systemd/user' : '/etc/systemd/system';
  return [
    ...(dir === standard || dirname(dir) === '' ? [] : [`# (units written to ${dir}; systemd reads ${standard}: copy or link them there)`]),
    `${ctl} daemon-reload`,
    `${ctl} enable --now ${name}.socket ${name}.service`,
    `${ctl} status ${name}.service`,
    ...(scope === 'user' ? ['loginctl enable-linger "$USER"   # optional: keep the agent running when you are logged out'] : []),
  ];
}
