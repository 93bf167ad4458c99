/**
 * The client's half of the hello handshake: a promise that settles once the
 * service's hello matched our protocol (or rejects with why not), and whether
 * the service speaks a newer compatible version. Split from rpc-client.ts:
 * the handshake is one small state machine of its own (waiting → ready, or
 * failed), independent of the call table.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { judgePeerHello } from '../protocol/hello-compat.js';
import type { HelloEnvelope } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';

/** Waits for the service's hello and judges it. */
export class ClientHello {
  /** Resolves with the service's hello once it matched; rejects with ERR_PROTOCOL_MISMATCH or the close reason. */
  readonly promise: Promise<HelloEnvelope>;
  /** True once the service's hello matched (or none was expected). */
  done = false;
  /** The service speaks another, compatible version of the protocol (its hello said so). */
  evolved = false;
  private settle!: { resolve(hello: HelloEnvelope): void; reject(err: BulkheadError): void };

  constructor(private readonly protocol: CompiledProtocol) {
    this.promise = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Nobody may be waiting yet; the rejection is observed through acquire().
    this.promise.catch(() => {});
  }

  /** No hello will come (a helper's outbound channel): ready at once, as our own protocol. */
  assume(): void {
    const p = this.protocol;
    this.done = true;
    this.settle.resolve({ kind: 'hello', role: 'service', protocol: p.name, version: p.version, schemaHash: p.hash, info: {} });
  }

  /** The service's hello: ready if it matches, else the channel fails with the mismatch. */
  receive(hello: HelloEnvelope, channel: FramedChannel): void {
    if (this.done) return;
    const verdict = judgePeerHello(this.protocol, 'client', hello, 'Make the helper serve() the protocol its manifest names, or evolve the protocol compatibly (docs/protocols.md, "Versioning").');
    if (!verdict.ok) {
      this.settle.reject(verdict.error);
      channel.fail(verdict.error);
      return;
    }
    this.evolved = verdict.evolved;
    this.done = true;
    this.settle.resolve(hello);
  }

  /** The handshake can no longer succeed (no effect once it did). */
  fail(error: BulkheadError): void {
    if (!this.done) this.settle.reject(error);
  }
}
