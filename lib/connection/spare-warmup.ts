/**
 * A prewarmed spare's dry run of its activation, in memory: V8 compiles a
 * function on its first call, and a spare that never received a frame would
 * compile the decoder, the hello check, the params validators and the reply
 * encoder while its first call waits (about 2 ms of the activation on this
 * project's 2-core machine). Running that pure code once before the spare says
 * it is warm moves the cost off the call's path. Nothing here touches a socket
 * or runs a handler.
 * @module
 */
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { judgePeerHello } from '../protocol/hello-compat.js';
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeChunks } from '../wire/envelope.js';
import { FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';

/**
 * Decodes a broker's hello and one call per method, judges the hello, runs each
 * method's params and result validators (a compiled validator is built on its
 * first use), encodes a reply and an error, and sets a timer. Results are thrown away; a
 * failure here only means less was warmed.
 */
export function warmActivationPath(protocol: CompiledProtocol): void {
  try {
    const hello = decodeEnvelope(encodeEnvelope({ kind: 'hello', role: 'client', protocol: protocol.name, version: protocol.version, schemaHash: protocol.hash, info: { broker: 0 } }).subarray(FRAME_HEADER_BYTES));
    if (hello.kind === 'hello') judgePeerHello(protocol, 'service', hello, '');
    for (const method of protocol.methodNames()) {
      const call = decodeEnvelope(encodeEnvelope({ kind: 'call', id: 1, method, params: {}, meta: null }).subarray(FRAME_HEADER_BYTES));
      if (call.kind === 'call') protocol.check('params', method, call.params);
      protocol.check('result', method, {});
    }
    // As rpc-server sends a small reply (no large byte string: the whole-frame path of envelope.ts).
    encodeEnvelopeChunks({ kind: 'reply', id: 1, result: { warm: true } }, true);
    encodeEnvelopeChunks({ kind: 'error', id: 1, error: { code: 'ERR_INVALID_PARAMS', message: 'warm-up', data: {} } });
    // The heartbeat's interval starts on activation: Node's timer lists are set up on first use.
    clearInterval(setInterval(() => undefined, 2 ** 30));
  } catch {
    // Warming is an optimisation; the activation compiles whatever was missed.
  }
}
