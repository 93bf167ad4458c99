/**
 * The in-memory test tier (VS Code tests its IPC client and server the same way): an
 * RpcClient and an RpcServer, each over its own FramedChannel, joined by a pair of
 * in-memory duplex streams instead of a socketpair and a child process. No process, no
 * socket, no timer of its own: a test runs in milliseconds and only what it sends happens.
 *
 * The pair behaves like a socket where it matters to the channel: a write is only
 * acknowledged once the peer's readable side took it (so a peer that stops reading makes
 * the writer's buffer grow and `write()` return false), and destroying one end is an EOF
 * and a close for the other.
 */
import { Duplex } from 'node:stream';
import { join } from 'node:path';
import { bulkheadError, type BulkheadError } from '../lib/errors.js';
import { RpcClient, type RpcClientOptions } from '../lib/connection/rpc-client.js';
import { RpcServer, type Handler, type RpcServerOptions } from '../lib/connection/rpc-server.js';
import type { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { loadProtocol } from '../lib/protocol/registry.js';
import { decodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel, type FramedChannelOptions } from '../lib/wire/framed-channel.js';
import { fileURLToPath } from 'node:url';

/** test/fixtures (this module avoids helpers.ts, which loads tap: fuzz/run.js imports it too). */
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** One end of an in-memory duplex pair. */
export class MemoryEnd extends Duplex {
  peer!: MemoryEnd;
  /** Every chunk this end wrote, in order (what went over the "wire" from here). */
  readonly written: Buffer[] = [];
  /** The acknowledgement of a write the peer has not taken yet (it stopped reading). */
  private unacknowledged: (() => void) | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk);
    if (this.peer.destroyed) {
      callback(Object.assign(new Error('write after the peer closed'), { code: 'EPIPE' }));
      return;
    }
    // push() is false once the peer's read buffer is full: hold the acknowledgement until it reads.
    if (this.peer.push(chunk)) callback();
    else this.peer.onTaken(callback);
  }

  /** @internal The peer waits for this end to read; called with its write's acknowledgement. */
  onTaken(ack: () => void): void {
    this.unacknowledged = ack;
  }

  override _read(): void {
    const ack = this.unacknowledged;
    this.unacknowledged = undefined;
    ack?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A dead peer looks like EOF to the other end (a socketpair whose other fd closed).
    if (!this.peer.destroyed && !this.peer.readableEnded) this.peer.push(null);
    this.unacknowledged = undefined;
    callback(error);
  }
}

/**
 * Two connected in-memory duplex streams. `highWaterMark` bounds what each readable side
 * buffers before the writer is held back (bytes).
 */
export function duplexPair(highWaterMark = 16 * 1024): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd({ highWaterMark });
  const b = new MemoryEnd({ highWaterMark });
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Envelopes decoded from the bytes one end wrote (a wire log for assertions). */
export function envelopesWritten(end: MemoryEnd, maxFrameBytes?: number): Envelope[] {
  const decoder = new FrameDecoder(maxFrameBytes);
  return end.written.flatMap((chunk) => decoder.push(chunk)).map((body) => decodeEnvelope(body));
}

/** The protocol of the in-memory tier (test/fixtures/protocols/com.test.memory.json). */
export function memoryProtocol(name = 'com.test.memory'): CompiledProtocol {
  return loadProtocol(join(FIXTURES, 'protocols'), name);
}

/** Options of {@link rpcPair}. */
export interface RpcPairOptions {
  /** Handlers of the server (the service). */
  handlers: Record<string, Handler>;
  /** The client's protocol. @default memoryProtocol() */
  clientProtocol?: CompiledProtocol;
  /** The server's protocol. @default memoryProtocol() */
  serverProtocol?: CompiledProtocol;
  client?: RpcClientOptions;
  server?: RpcServerOptions;
  clientChannel?: FramedChannelOptions;
  serverChannel?: FramedChannelOptions;
  /** Readable buffer of each end, in bytes. @default 16 KiB */
  highWaterMark?: number;
}

/** A client and a server joined in memory, and what each observed. */
export interface RpcPair {
  client: RpcClient;
  server: RpcServer;
  clientChannel: FramedChannel;
  serverChannel: FramedChannel;
  /** The client's end of the pair (it writes calls, reads answers). */
  clientEnd: MemoryEnd;
  /** The server's end of the pair. */
  serverEnd: MemoryEnd;
  /** Resolves when the client's channel closes, with why (undefined: a clean end). */
  clientClosed: Promise<BulkheadError | undefined>;
  /** Resolves when the server's channel closes, with why. */
  serverClosed: Promise<BulkheadError | undefined>;
  /** Events broadcast to every client (call id 0), as the client accepted them. */
  broadcasts: Array<[string, unknown]>;
  /** Events the client refused (invalid or unknown). */
  eventErrors: BulkheadError[];
  /** How many times the server's goodbye hook ran. */
  goodbyes: number;
}

/**
 * Joins an RpcClient and an RpcServer in memory, wired as the broker wires a helper's
 * channel: envelopes go to `client.receive`; when the channel closes, every call still
 * pending is interrupted (with the frame error that closed it, if any).
 */
export function rpcPair(options: RpcPairOptions): RpcPair {
  const [clientEnd, serverEnd] = duplexPair(options.highWaterMark);
  const clientChannel = new FramedChannel(clientEnd, options.clientChannel);
  const serverChannel = new FramedChannel(serverEnd, options.serverChannel);
  const broadcasts: Array<[string, unknown]> = [];
  const eventErrors: BulkheadError[] = [];
  const client = new RpcClient(clientChannel, options.clientProtocol ?? memoryProtocol(), {
    broadcast: (name, payload) => broadcasts.push([name, payload]),
    eventError: (error) => eventErrors.push(error),
  }, options.client);
  let settleClient!: (error: BulkheadError | undefined) => void;
  const clientClosed = new Promise<BulkheadError | undefined>((resolve) => (settleClient = resolve));
  clientChannel.attach({
    envelope: (e, body) => client.receive(e, body.length),
    closed: (error) => {
      client.interrupt(error ?? client.peerError ?? bulkheadError('ERR_INTERRUPTED', 'The in-memory peer closed the channel.'));
      settleClient(error);
    },
  });
  let settleServer!: (error: BulkheadError | undefined) => void;
  const serverClosed = new Promise<BulkheadError | undefined>((resolve) => (settleServer = resolve));
  const pair: RpcPair = {
    client, clientChannel, serverChannel, clientEnd, serverEnd, clientClosed, serverClosed, broadcasts, eventErrors, goodbyes: 0,
    server: undefined as unknown as RpcServer,
  };
  pair.server = new RpcServer(serverChannel, options.serverProtocol ?? memoryProtocol(), options.handlers, {
    goodbye: () => pair.goodbyes++,
    closed: (error) => settleServer(error),
  }, options.server);
  client.sendHello({ test: 'memory' });
  return pair;
}

/** A promise and the functions that settle it (a test waits on events, never on sleeps). */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
