/**
 * The client side of bulkhead and of every baseline, behind one small
 * interface, so a scenario can run them all the same way. Each baseline is the
 * minimal honest version of what a user would write instead: one message
 * `{ id, method, params }` out, `{ id, result }` back, events as `{ event, payload }`,
 * correlated by id in a Map, answered through a Promise (as bulkhead's calls are).
 * @module
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Decoder, Encoder } from 'cbor-x';
import * as grpc from '@grpc/grpc-js';
import { Broker, releaseBytes, type Connection, type ServiceManifest } from 'bulkhead';
import { unsandboxedEnv } from '../../lib/sandbox/env.js';
import { FIXTURES } from './report.js';

/**
 * The environment of every baseline child: what the broker gives an unsandboxed
 * helper (an allowlist of the bench's env), so that nothing in this shell's env
 * (NODE_EXTRA_CA_CERTS costs ~37 ms per Node 20 start) favours one side.
 */
export function baselineEnv(own: Record<string, string> = {}): Record<string, string> {
  return unsandboxedEnv(own);
}

/** Methods of the bench protocol (bench/fixtures/protocols/com.bench.echo.json). */
export type Method = 'echo' | 'bytes' | 'burst';

/** The small message every transport carries. */
export const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };

/** One way of calling the echo service. */
export interface Transport {
  readonly name: string;
  /** One request; resolves with the result. */
  call(method: Method, params: unknown): Promise<unknown>;
  /** Events received so far. */
  readonly events: number;
  /** The process on the other side (for its CPU time); undefined when it is this process. */
  readonly peerPid: number | undefined;
  /** Called when the caller is done with a result (bulkhead with releaseBytes gives its byte strings back). */
  done?(result: unknown): void;
  close(): Promise<void>;
}

/** Largest frame the bench's broker accepts: a 16 MiB payload plus its envelope. */
export const BENCH_MAX_FRAME_BYTES = 32 * 1024 * 1024;

/** Manifest fields every bench registration shares: no throttle, no breaker in the way of repeated launches. */
export const BENCH_LAUNCH = { throttleMs: 0, maxRestarts: 10_000 } as const;

/** bulkhead: an embedded broker, the echo helper unsandboxed unless a profile is given; validation on both ends (always on). */
export async function bulkheadTransport(name = 'bulkhead', manifest: Partial<ServiceManifest> = {}): Promise<Transport & { broker: Broker; connection: Connection }> {
  const broker = new Broker({ root: FIXTURES, maxFrameBytes: BENCH_MAX_FRAME_BYTES });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', launch: { ...BENCH_LAUNCH }, ...manifest });
  const connection = broker.connect('echo');
  let events = 0;
  connection.on('event', () => {
    events++;
  });
  await connection.call('echo', MESSAGE);
  return {
    name,
    broker,
    connection,
    call: (method, params) => connection.call(method, params),
    get events() {
      return events;
    },
    get peerPid() {
      return broker.status('echo').pid ?? undefined;
    },
    close: () => broker.close(),
  };
}

/**
 * bulkhead as {@link bulkheadTransport}, and the caller gives each result's `data` back with
 * `releaseBytes` once done with it (the opt-in path for large byte strings, lib/wire/body-pool.ts).
 */
export async function bulkheadReleasingTransport(name = 'bulkhead + releaseBytes'): Promise<Transport> {
  const t = await bulkheadTransport(name);
  return Object.assign(t, {
    done: (result: unknown) => {
      const data = (result as { data?: unknown } | null)?.data;
      if (data instanceof Uint8Array) releaseBytes(data);
    },
  });
}

interface Correlated {
  call(method: Method, params: unknown): Promise<unknown>;
  receive(msg: { id?: number; result?: unknown; event?: string }): void;
  readonly events: number;
}

/** id → resolver bookkeeping shared by the message baselines. */
function correlate(send: (msg: { id: number; method: Method; params: unknown }) => void): Correlated {
  let nextId = 1;
  let events = 0;
  const pending = new Map<number, (value: unknown) => void>();
  return {
    call: (method, params) => new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      send({ id, method, params });
    }),
    receive: (msg) => {
      if (msg.event !== undefined) {
        events++;
        return;
      }
      const resolve = pending.get(msg.id!);
      pending.delete(msg.id!);
      resolve?.(msg.result);
    },
    get events() {
      return events;
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Node's child_process IPC, `serialization: 'json'` (the default) or `'advanced'` (v8.serialize). */
export async function forkTransport(serialization: 'json' | 'advanced'): Promise<Transport> {
  const child = fork(`${FIXTURES}ipc-echo-child.js`, { serialization, env: baselineEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const c = correlate((msg) => child.send(msg));
  child.on('message', (msg) => c.receive(msg as { id: number }));
  const t: Transport = {
    name: `fork IPC ${serialization}`,
    call: c.call,
    get events() {
      return c.events;
    },
    peerPid: child.pid,
    close: async () => {
      child.kill();
      await exited(child);
    },
  };
  await t.call('echo', MESSAGE);
  return t;
}

/** Splits a byte stream into 4-byte-length-prefixed bodies, as bulkhead's FrameDecoder does. */
export class FrameReader {
  private expected = -1;
  private body: Buffer | undefined;
  private filled = 0;
  private header = Buffer.alloc(0);

  constructor(private readonly onFrame: (body: Buffer) => void) {}

  push(input: Buffer): void {
    let chunk = input;
    if (this.header.length > 0) {
      chunk = Buffer.concat([this.header, chunk]);
      this.header = Buffer.alloc(0);
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (this.expected < 0) {
        if (chunk.length - pos < 4) {
          this.header = Buffer.from(chunk.subarray(pos));
          return;
        }
        this.expected = chunk.readUInt32BE(pos);
        pos += 4;
      }
      if (this.body === undefined && chunk.length - pos >= this.expected) {
        const end = pos + this.expected;
        this.expected = -1;
        this.onFrame(chunk.subarray(pos, end));
        pos = end;
        continue;
      }
      this.body ??= Buffer.allocUnsafe(this.expected);
      const n = Math.min(this.expected - this.filled, chunk.length - pos);
      chunk.copy(this.body, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
      if (this.filled === this.expected) {
        const done = this.body;
        this.body = undefined;
        this.filled = 0;
        this.expected = -1;
        this.onFrame(done);
      }
    }
  }
}

function spawnFd3(script: string, env: Record<string, string> = {}): { child: ChildProcess; socket: Socket } {
  const child = spawn(process.execPath, [`${FIXTURES}${script}`], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: baselineEnv(env) });
  return { child, socket: child.stdio[3] as Socket };
}

/**
 * The wire floor: fd 3 socketpair, 4-byte length, cbor-x, no checks. `records`
 * turns on cbor-x records (sequential) on both ends; off is bulkhead's codec setting.
 */
export async function rawCborTransport(records: boolean): Promise<Transport> {
  const { child, socket } = spawnFd3('raw-cbor-child.js', { BENCH_CBOR_RECORDS: records ? '1' : '0' });
  const options = records
    ? { useRecords: true, sequential: true, mapsAsObjects: true, tagUint8Array: false }
    : { useRecords: false, mapsAsObjects: true, tagUint8Array: false, structuredClone: false, pack: false, bundleStrings: false };
  const encoder = new Encoder(options);
    // The decoder keeps the record structures the encoder defined inline in earlier frames.
  const decoder = new Decoder(records ? { ...options, structures: [] } : options);
  const c = correlate((msg) => {
    const body = encoder.encode(msg);
    const frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32BE(body.length, 0);
    frame.set(body, 4);
    socket.write(frame);
  });
  const reader = new FrameReader((body) => c.receive(decoder.decode(body) as { id: number }));
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  const t: Transport = {
    name: records ? 'socketpair + cbor-x records' : 'socketpair + cbor-x',
    call: c.call,
    get events() {
      return c.events;
    },
    peerPid: child.pid,
    close: async () => {
      socket.end();
      child.kill();
      await exited(child);
    },
  };
  await t.call('echo', MESSAGE);
  return t;
}

/** Raw bytes over the fd 3 socketpair: 4-byte length + payload, one echo at a time (only `bytes`). */
export async function rawBytesTransport(): Promise<Transport> {
  const { child, socket } = spawnFd3('raw-bytes-child.js');
  const waiting: Array<(result: { data: Buffer }) => void> = [];
  const reader = new FrameReader((body) => waiting.shift()?.({ data: body }));
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  return {
    name: 'socketpair raw bytes',
    call: (method, params) => {
      if (method !== 'bytes') return Promise.reject(new Error('raw bytes transport only echoes bytes'));
      const data = (params as { data: Buffer }).data;
      return new Promise((resolve) => {
        waiting.push(resolve);
        const h = Buffer.allocUnsafe(4);
        h.writeUInt32BE(data.length, 0);
        socket.cork();
        socket.write(h);
        socket.write(data);
        socket.uncork();
      });
    },
    events: 0,
    peerPid: child.pid,
    close: async () => {
      socket.end();
      child.kill();
      await exited(child);
    },
  };
}

/** worker_threads MessagePort (structured clone), in this process. */
export async function workerTransport(): Promise<Transport> {
  const worker = new Worker(`${FIXTURES}worker-echo.js`);
  const c = correlate((msg) => worker.postMessage(msg));
  worker.on('message', (msg) => c.receive(msg as { id: number }));
  const t: Transport = {
    name: 'worker_threads',
    call: c.call,
    get events() {
      return c.events;
    },
    peerPid: undefined,
    close: async () => {
      await worker.terminate();
    },
  };
  await t.call('echo', MESSAGE);
  return t;
}

/** @grpc/grpc-js unary over a Unix socket, JSON-serialized (only `echo`). */
export async function grpcTransport(): Promise<Transport> {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-bench-grpc-'));
  const path = join(dir, 'echo.sock');
  const child = fork(`${FIXTURES}grpc-echo-child.js`, [path], { env: baselineEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`grpc child exited ${code}`)));
  });
  const client = new grpc.Client(`unix:${path}`, grpc.credentials.createInsecure());
  const serialize = (v: unknown) => Buffer.from(JSON.stringify(v));
  const deserialize = (b: Buffer) => JSON.parse(b.toString()) as unknown;
  let nextId = 1;
  const t: Transport = {
    name: 'grpc-js unary (unix socket)',
    call: (method, params) => new Promise((resolve, reject) => {
      if (method !== 'echo') return reject(new Error('gRPC transport only echoes small messages'));
      client.makeUnaryRequest('/bench.Echo/Echo', serialize, deserialize, { id: nextId++, method, params }, (err, value) => (err ? reject(err) : resolve(value)));
    }),
    events: 0,
    peerPid: child.pid,
    close: async () => {
      client.close();
      child.kill();
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await t.call('echo', MESSAGE);
  return t;
}
