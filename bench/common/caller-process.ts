/**
 * The bench process's handle on one payload caller process
 * (bench/scenarios/payloads-process.ts): started with fork() (same node
 * binary, flags and environment as the bench), asked one thing at a time
 * over the IPC channel, and always reaped.
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CallerReply, CallerRequest, PayloadTransportKind } from './payload-echo.js';

const CHILD = fileURLToPath(new URL('../scenarios/payloads-process.js', import.meta.url));

/** How long a caller may take to close its transport and exit after being let go. */
const EXIT_GRACE_MS = 10_000;

/** One transport's caller, in a long-lived process of its own. */
export class CallerProcess {
  private waiting: { resolve: (reply: CallerReply) => void; reject: (err: Error) => void } | undefined;
  private exited: string | undefined;
  private readonly exit: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly kind: PayloadTransportKind,
  ) {
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = `exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`;
        this.waiting?.reject(new Error(`payload caller "${kind}" ${this.exited}`));
        this.waiting = undefined;
        resolve();
      });
    });
    child.on('message', (reply: CallerReply) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w === undefined) return;
      if (reply.type === 'error') w.reject(new Error(`payload caller "${kind}" failed: ${reply.message}`));
      else w.resolve(reply);
    });
    child.on('error', (err) => {
      this.waiting?.reject(err);
      this.waiting = undefined;
    });
  }

  /** Starts the process; resolves with it and its transport's name once the transport is up. */
  static async start(kind: PayloadTransportKind): Promise<{ caller: CallerProcess; name: string }> {
    // fork(): process.execPath with process.execArgv and process.env, stdout/stderr shared with the bench.
    const caller = new CallerProcess(fork(CHILD, [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), kind);
    try {
      const ready = await caller.next();
      if (ready.type !== 'ready') throw new Error(`payload caller "${kind}" sent ${ready.type} before ready`);
      return { caller, name: ready.name };
    } catch (err) {
      await caller.close();
      throw err;
    }
  }

  /** The caller's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The byte-for-byte check of every size and the warm-up (`echoes` echoes of the smallest size), in the caller's process. */
  async warmup(echoes: number): Promise<void> {
    const reply = await this.ask({ op: 'warmup', echoes });
    if (reply.type !== 'done') throw new Error(`payload caller "${this.kind}" answered warm-up with ${reply.type}`);
  }

  /** MB/s of `echoes` sequential echoes of `size` bytes, timed in the caller's process, and CPU µs per echo of both ends. */
  async rate(size: number, echoes: number): Promise<{ rate: number; callerCpu: number; peerCpu: number }> {
    const reply = await this.ask({ op: 'rate', size, echoes });
    if (reply.type !== 'rate') throw new Error(`payload caller "${this.kind}" answered a run with ${reply.type}`);
    return { rate: reply.rate, callerCpu: reply.callerCpu, peerCpu: reply.peerCpu };
  }

  /** Lets the process go (it closes its transport and exits on disconnect); SIGKILL if it lingers. */
  async close(): Promise<void> {
    if (this.exited !== undefined) return;
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS);
    await this.exit;
    clearTimeout(timer);
  }

  private ask(req: CallerRequest): Promise<CallerReply> {
    const reply = this.next();
    this.child.send(req);
    return reply;
  }

  private next(): Promise<CallerReply> {
    if (this.exited !== undefined) return Promise.reject(new Error(`payload caller "${this.kind}" ${this.exited}`));
    if (this.waiting !== undefined) return Promise.reject(new Error(`payload caller "${this.kind}" asked twice at once`));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }
}
