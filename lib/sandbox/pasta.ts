/**
 * User-mode networking for a `network: "full"` helper in a network namespace
 * of its own, the way rootless Podman does it: bubblewrap creates the
 * namespace (`--unshare-net`), tells the broker its child's pid on a pipe
 * (`--info-fd`) and waits on another (`--block-fd`) before it execs anything
 * of the helper's; the broker attaches passt's `pasta` to that namespace
 * (`--config-net`: a tap interface with the host's addresses, routes and
 * DNS), and once pasta says it is ready (its pid on stdout, `-P`), writes the
 * byte that lets bubblewrap go on. The helper's first instruction runs with
 * the network already up, and with an abstract Unix socket namespace of its
 * own: the host's abstract names are out of reach, and a name it binds is
 * invisible to the host (the CVE-2020-15257 class).
 *
 * pasta relays TCP, UDP and ICMP to the host's network as ordinary sockets of
 * its own process. Choices (docs/sandbox.md#network-full):
 * - `-t none -u none`: nothing on the host is forwarded into the helper, so a
 *   port it listens on is not exposed on the host's interfaces.
 * - `-T auto -U auto`: ports bound on the host's loopback are reachable at the
 *   helper's 127.0.0.1, as they were when "full" shared the host's namespace
 *   (pasta scans them at start and then every second); the gateway address
 *   also reaches the host (pasta's default gateway mapping).
 * - A root broker runs pasta as root (`--runas 0:0`): passt 2023.03 drops to
 *   "nobody" otherwise and can then neither open a root-owned namespace nor
 *   join it. pasta confines itself either way (its own seccomp filter, an
 *   empty mount namespace, no_new_privs). An unprivileged broker hands pasta
 *   the namespace and the user namespace that owns it (NS_GET_USERNS; the
 *   broker's uid owns it): bubblewrap's child itself sits in a nested one.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { loadFfi } from './ffi.js';

const O_CLOEXEC = 0o2000000;
/** ioctl on a namespace fd: an fd of the user namespace that owns it (linux/nsfs.h). */
const NS_GET_USERNS = 0xb701;

/** How long pasta may take to attach before the launch is failed. */
export const PASTA_ATTACH_TIMEOUT_MS = 15_000;

/** pasta's port-forwarding arguments (see the module comment). */
export const PASTA_FORWARDING = ['-t', 'none', '-u', 'none', '-T', 'auto', '-U', 'auto'] as const;

/** Where the attachment is. */
export type PastaState = 'waiting' | 'attaching' | 'ready' | 'failed' | 'stopped';

/** What {@link PastaAttachment} needs. */
export interface PastaAttachmentOptions {
  /** Absolute path of `pasta`. */
  pasta: string;
  /** `setpriv`, to give pasta a parent-death signal (it must not outlive a killed broker), or null. */
  setpriv: string | null;
  /** True when the broker is root (pasta joins by namespace fd, as root); else by pid (the user namespace too). */
  isRoot: boolean;
  /** Broker-side read end of bubblewrap's `--info-fd` pipe (owned, closed here). */
  infoFd: number;
  /** Broker-side write end of bubblewrap's `--block-fd` pipe (owned, closed here). */
  blockFd: number;
  /** The fd number bubblewrap's child reads the gate from (its `--block-fd` argument). */
  blockChildFd: number;
}

/** read(2)'s number, as /proc/PID/syscall shows it. */
const SYS_READ: Partial<Record<string, number>> = { x64: 0, arm64: 63 };

/** How often to look whether bubblewrap's child reached its gate. */
const GATE_POLL_MS = 2;

/**
 * One helper's pasta: reads bubblewrap's info, starts pasta, opens the gate.
 * It starts at construction and never throws; a failure kills the waiting
 * sandbox (the launch ends as an exit) and is kept in {@link PastaAttachment.failure}.
 */
export class PastaAttachment {
  private stateValue: PastaState = 'waiting';
  private problem: string | undefined;
  private child: ChildProcess | undefined;
  private sandboxPid: number | undefined;
  private readonly info: Socket;
  private readyStream: Socket | undefined;
  private blockFd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When pasta said it was ready, in ms after bubblewrap reported its child (performance figures). */
  attachMs: number | undefined;
  /** Settles when the pasta process has exited, or at once while none was started. */
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: PastaAttachmentOptions) {
    this.blockFd = options.blockFd;
    // A pipe fd as a libuv stream: read without holding a thread-pool thread while bubblewrap starts.
    this.info = new Socket({ fd: options.infoFd, readable: true, writable: false });
    this.info.unref();
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const pid = childPid(text);
      if (pid === undefined) {
        if (text.length > 4096) this.fail('bubblewrap wrote an info block bulkhead cannot read');
        return;
      }
      this.info.off('data', onData);
      this.info.destroy();
      this.sandboxPid = pid;
      this.whenAtGate(pid);
    };
    this.info.on('data', onData);
    this.info.on('error', () => undefined); // closed under us at stop(): nothing to report
  }

  /** Where the attachment is. */
  get state(): PastaState {
    return this.stateValue;
  }

  /** Why attaching failed (for the exit's reason), or undefined. */
  get failure(): string | undefined {
    return this.problem;
  }

  /**
   * bubblewrap reports its child right after clone(), while the child still sets up the namespace's
   * loopback; pasta configuring the namespace at the same time makes that fail (RTM_NEWADDR). So
   * pasta starts once the child sits in read(block fd): its /proc/PID/syscall says so.
   */
  private whenAtGate(pid: number): void {
    const read = SYS_READ[process.arch];
    const started = performance.now();
    const look = (): void => {
      if (this.stateValue !== 'waiting') return;
      let line: string;
      try {
        line = readFileSync(`/proc/${pid}/syscall`, 'utf8');
      } catch (err) {
        // Gone before its gate: bubblewrap failed on its own, and its exit (with its stderr) says why.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') void this.stop();
        else this.fail(`cannot watch bubblewrap's child ${pid}: ${(err as Error).message}`);
        return;
      }
      const [nr, fd] = line.split(' ');
      if (read === undefined || (Number(nr) === read && Number(fd) === this.options.blockChildFd)) {
        this.attach(pid);
      } else if (performance.now() - started > PASTA_ATTACH_TIMEOUT_MS) {
        this.fail(`bubblewrap's child did not reach its gate within ${PASTA_ATTACH_TIMEOUT_MS} ms`);
      } else {
        setTimeout(look, GATE_POLL_MS).unref();
      }
    };
    look();
  }

  private attach(pid: number): void {
    if (this.stateValue !== 'waiting') return;
    this.stateValue = 'attaching';
    const started = performance.now();
    const { pasta, setpriv, isRoot } = this.options;
    const ffi = loadFfi();
    // pasta writes its pid file "once initialisation is done": a pipe for it is the readiness signal
    // (Node's stdio pipes are socketpairs, which pasta cannot open by path).
    const ready = ffi.ok ? ffi.libc.pipe2(O_CLOEXEC) : null;
    if (ready === null) {
      this.fail('pipe2 failed for pasta\'s readiness pipe');
      return;
    }
    const base = ['--config-net', '--quiet', '--foreground', ...PASTA_FORWARDING, '--pid', '/proc/self/fd/3'];
    // The broker opens the namespaces and hands pasta fds (4: net, 5: its owning user ns). pasta drops
    // CAP_SYS_PTRACE early, so it could not open a root sandbox's /proc/PID/ns/* itself; and unprivileged,
    // /proc/PID/ns/user is bubblewrap's nested user namespace, not the one that owns the network namespace.
    const nsFds: number[] = [];
    const closeAll = (): void => {
      for (const fd of [...ready, ...nsFds]) closeSync(fd);
    };
    try {
      nsFds.push(openSync(`/proc/${pid}/ns/net`, 'r'));
      if (!isRoot) {
        const owner = ffi.ok ? ffi.libc.ioctl(nsFds[0]!, NS_GET_USERNS) : -1;
        if (owner < 0) throw new Error(`NS_GET_USERNS failed (errno ${ffi.ok ? ffi.libc.errno() : '?'})`);
        nsFds.push(owner);
      }
    } catch (err) {
      closeAll();
      this.fail(`cannot open the helper's network namespace: ${(err as Error).message}`);
      return;
    }
    // A root broker runs pasta as root: passt 2023.03 drops to "nobody" otherwise, which cannot join a root-owned namespace.
    const args = isRoot ? [...base, '--runas', '0:0', '--netns', '/proc/self/fd/4'] : [...base, '--userns', '/proc/self/fd/5', '--netns', '/proc/self/fd/4'];
    const command = setpriv !== null ? setpriv : pasta;
    const argv = setpriv !== null ? ['--pdeathsig', 'KILL', '--', pasta, ...args] : args;
    let child: ChildProcess | undefined;
    let spawnError: Error | undefined;
    try {
      child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe', ready[1], ...nsFds], env: {} });
    } catch (err) {
      spawnError = err as Error;
    }
    for (const fd of [ready[1], ...nsFds]) closeSync(fd);
    const readyStream = new Socket({ fd: ready[0], readable: true, writable: false });
    readyStream.unref();
    readyStream.on('error', () => undefined);
    this.readyStream = readyStream;
    if (child === undefined) {
      this.fail(`pasta could not be started: ${spawnError?.message ?? 'spawn failed'}`);
      return;
    }
    this.child = child;
    const running = child;
    this.exited = new Promise((resolve) => {
      if (running.exitCode !== null || running.signalCode !== null) resolve();
      else running.once('exit', () => resolve());
    });
    child.unref();
    let pidText = '';
    let stderr = '';
    readyStream.on('data', (chunk: Buffer) => {
      pidText += chunk.toString('utf8');
      if (this.stateValue === 'attaching' && pidText.includes('\n')) {
        this.attachMs = performance.now() - started;
        readyStream.destroy();
        this.open();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2048) stderr += chunk.toString('utf8');
    });
    (child.stderr as unknown as Socket | null)?.unref();
    child.on('error', (err) => this.fail(`pasta could not be started: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.stateValue === 'stopped') return;
      const why = `pasta exited (${signal ?? `code ${code}`})${stderr.trim() !== '' ? `: ${stderr.trim().split('\n').slice(-2).join(' ')}` : ''}`;
      // Exiting while the helper runs takes its network away: end the helper rather than leave it half-connected.
      this.fail(this.stateValue === 'ready' ? `${why} while the helper ran` : why);
    });
    this.timer = setTimeout(() => this.fail(`pasta did not attach within ${PASTA_ATTACH_TIMEOUT_MS} ms`), PASTA_ATTACH_TIMEOUT_MS);
    this.timer.unref();
  }

  /** pasta is up: let bubblewrap exec the helper. */
  private open(): void {
    clearTimeout(this.timer);
    this.stateValue = 'ready';
    if (this.blockFd === undefined) return;
    try {
      writeSync(this.blockFd, 'g'); // one byte into an empty pipe never blocks
    } finally {
      closeSync(this.blockFd);
      this.blockFd = undefined;
    }
  }

  private fail(problem: string): void {
    if (this.stateValue === 'failed' || this.stateValue === 'stopped') return;
    this.problem ??= `network "full": ${problem}`;
    this.stateValue = 'failed';
    clearTimeout(this.timer);
    // Never open the gate: bubblewrap would run the helper in a namespace with no way out but its
    // loopback. Kill the waiting sandbox instead, so the launch ends as an exit whose reason says why.
    if (this.sandboxPid !== undefined) {
      try {
        process.kill(this.sandboxPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.release();
  }

  /**
   * Ends pasta and closes the pipes (the helper exited, or its launch was abandoned). Idempotent.
   * @returns settles once pasta has exited (at once when it never ran)
   */
  stop(): Promise<void> {
    if (this.stateValue !== 'failed') this.stateValue = 'stopped';
    clearTimeout(this.timer);
    this.release();
    return this.exited;
  }

  private release(): void {
    this.info.destroy();
    this.readyStream?.destroy();
    if (this.blockFd !== undefined) {
      closeSync(this.blockFd);
      this.blockFd = undefined;
    }
    const child = this.child;
    this.child = undefined;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.ref(); // until its exit is seen: stop() promises it
      child.kill('SIGKILL');
    }
  }
}

/** The `"child-pid"` of bubblewrap's `--info-fd` JSON, once the block is complete. */
export function childPid(text: string): number | undefined {
  const end = text.indexOf('}');
  if (end < 0) return undefined;
  try {
    const parsed = JSON.parse(text.slice(0, end + 1)) as { 'child-pid'?: unknown };
    const pid = parsed['child-pid'];
    return typeof pid === 'number' && Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}
