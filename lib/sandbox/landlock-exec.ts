/**
 * The pre-exec stage, right before a helper's node:
 * `node landlock-exec.js '<spec json>' -- <command> <args...>`.
 * - Landlock (when the spec has `scope` or `fs`): creates a ruleset and
 *   restricts itself (Landlock binds the calling thread and every program it
 *   later execs), so the helper's node starts already inside the domain, on
 *   every thread it will ever have.
 * - The exec guard (when the spec has `execGuard`, `processes.children: false`):
 *   loads a seccomp filter that refuses every exec but this stage's own one
 *   ({@link ./exec-guard-stage.ts}).
 * Then it execs the command in place. Runs inside the sandbox (after
 * bubblewrap, seccomp and setpriv), as its own tiny process image; it imports
 * nothing but koffi.
 *
 * Exit codes: 120 bad arguments, 121 a Landlock call failed, 122 execve failed, 123 the exec guard failed.
 * @module
 */
import { closeSync, openSync, readlinkSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FS, handledFs, type LandlockSpec } from './landlock-spec.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { guardedExec } from './exec-guard-stage.js';

type Koffi = typeof import('koffi');
type KoffiFunction = ReturnType<ReturnType<Koffi['load']>['func']>;

const SYS_CREATE = 444;
const SYS_ADD_RULE = 445;
const SYS_RESTRICT_SELF = 446;
const RULE_PATH_BENEATH = 1;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

const READ = FS.READ_FILE | FS.READ_DIR;
const FILE_RIGHTS = FS.EXECUTE | FS.READ_FILE | FS.WRITE_FILE | FS.TRUNCATE | FS.IOCTL_DEV;

const F_SETFD = 2;

function isSocket(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
  } catch {
    return false;
  }
}

/** A NULL-terminated `char *[]` for execve; `strings` keeps the C strings alive while `table` is in use. */
function cStrings(koffi: Koffi, values: string[]): { table: Buffer; strings: Buffer[] } {
  const strings = values.map((v) => Buffer.from(`${v}\0`));
  const table = Buffer.alloc(8 * (strings.length + 1));
  strings.forEach((b, i) => table.writeBigUInt64LE(koffi.address(b), 8 * i));
  return { table, strings };
}

function fail(code: number, message: string): never {
  process.stderr.write(`bulkhead landlock-exec: ${message}\n`);
  process.exit(code);
}

function main(argv: string[]): void {
  const sep = argv.indexOf('--');
  if (sep !== 1 || argv.length < 3) fail(120, 'usage: landlock-exec <spec> -- <command> [args...]');
  const spec = JSON.parse(argv[0]!) as LandlockSpec;
  const command = argv.slice(2);
  const koffi = createRequire(import.meta.url)(spec.koffi ?? 'koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const sys = libc.func('long syscall(long nr, ...)');

  if (spec.scope !== undefined || spec.fs !== undefined) restrict(koffi, sys, spec);
  keepChannelFds(libc);
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  if (spec.execGuard !== undefined) {
    guardedExec({ koffi, libc, koffiPath: spec.koffi ?? 'koffi', bpf: Buffer.from(spec.execGuard, 'base64'), path: command[0]!, argv: command, env, fail: (message) => fail(123, message) });
    return; // the exec is under way on another thread
  }
  const argTable = cStrings(koffi, command);
  const envp = cStrings(koffi, env);
  const execve = libc.func('int execve(const char *path, void *argv, void *envp)');
  execve(command[0]!, argTable.table, envp.table);
  fail(122, `execve(${command[0]!}) failed (errno ${koffi.errno()})`);
}

/** Creates the Landlock ruleset the spec describes and restricts this process (and all it execs) to it. */
function restrict(koffi: Koffi, sys: KoffiFunction, spec: LandlockSpec): void {
  const attr = Buffer.alloc(24); // struct landlock_ruleset_attr { u64 handled_access_fs, handled_access_net, scoped }
  const handled = spec.fs === undefined ? 0 : handledFs(spec.fs.abi);
  attr.writeBigUInt64LE(BigInt(handled), 0);
  attr.writeBigUInt64LE(BigInt((spec.scope?.abstractUnix === true ? 1 : 0) | (spec.scope?.signal === true ? 2 : 0)), 16);
  const ruleset = Number(sys(SYS_CREATE, 'void *', attr, 'unsigned long', 24, 'unsigned int', 0));
  if (ruleset < 0) fail(121, `landlock_create_ruleset failed (errno ${koffi.errno()})`);
  if (spec.fs !== undefined) {
    const allow = (path: string, access: number): void => {
      let fd: number;
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
        fd = openSync(path, O_PATH | O_CLOEXEC);
      } catch {
        return; // a path that does not exist in this mount namespace grants nothing
      }
      // A rule on a file may carry file rights only (the kernel answers EINVAL to READ_DIR, MAKE_*... on a file).
      const rights = access & handled & (isDir ? ~0 : FILE_RIGHTS);
      const beneath = Buffer.alloc(12); // packed { u64 allowed_access; s32 parent_fd }
      beneath.writeBigUInt64LE(BigInt(rights), 0);
      beneath.writeInt32LE(fd, 8);
      const rc = Number(sys(SYS_ADD_RULE, 'int', ruleset, 'int', RULE_PATH_BENEATH, 'void *', beneath, 'unsigned int', 0));
      closeSync(fd);
      if (rc < 0) fail(121, `landlock_add_rule(${path}) failed (errno ${koffi.errno()})`);
    };
    for (const path of spec.fs.read) allow(path, READ);
    for (const path of spec.fs.exec) allow(path, READ | FS.EXECUTE);
    for (const path of spec.fs.write) allow(path, handled & ~FS.EXECUTE);
  }
  if (Number(sys(SYS_RESTRICT_SELF, 'int', ruleset, 'unsigned int', 0)) < 0) fail(121, `landlock_restrict_self failed (errno ${koffi.errno()})`);
}

function keepChannelFds(libc: ReturnType<Koffi['load']>): void {
  // Node marks the fds it inherited close-on-exec; the helper needs stdio, its channel (fd 3), when present
  // the outbound channel (fd 4) and the hand-off pipe (daemon mode, the fd its variable names).
  const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
  const handoffFd = Number(process.env[HELPER_ENV.handoffFd] ?? '');
  for (const fd of [0, 1, 2, 3, 4, ...(Number.isInteger(handoffFd) && handoffFd > 4 && isSocket(handoffFd) ? [handoffFd] : [])]) {
    if (fd === 4 && !isSocket(fd)) continue; // no outbound channel: fd 4 is node's own
    fcntl(fd, F_SETFD, 0);
  }
}

main(process.argv.slice(2));
