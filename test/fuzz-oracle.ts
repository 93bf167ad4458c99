/**
 * What the fuzz tests share: the seeded case generator (test/fixtures/hardening/fuzz-gen.js,
 * plain JS, also used by fuzz/run.js and the hostile helper) and the stream-order oracle
 * that says what a byte stream must cause, whatever reads split it into.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BulkheadError } from '../lib/errors.js';
import { decodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../lib/wire/frame-decoder.js';
import { fileURLToPath } from 'node:url';

/** One generated case. */
export interface FuzzCase { family: string; name: string; bytes: Buffer }

/** The API of fuzz-gen.js that the tests use. */
export interface FuzzGen {
  generateCase(seed: number, index: number, options?: Record<string, unknown>): FuzzCase;
  ADVERSARIAL_NAMES: string[];
  DEFAULT_OPTIONS: { idBase: number; declaredEvent: string };
  rng(seed: number): { int(n: number): number; range(lo: number, hi: number): number };
  foreign(value: unknown): string | undefined;
}

/** test/fixtures (not from helpers.ts, which loads tap: fuzz/run.js imports this module). */
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** The generator module. */
export const gen = (await import(pathToFileURL(join(FIXTURES, 'hardening', 'fuzz-gen.js')).href)) as FuzzGen;

/** What a stream caused: the envelopes delivered and the close. */
export interface Verdict {
  /** Kinds of the envelopes delivered, in order. */
  kinds: string[];
  /** Code of the error that closed the stream, or undefined for a clean end. */
  code: string | undefined;
}

/**
 * An independent reading of the stream, frame by frame in stream order, that
 * does not depend on how reads split it (nor may the channel's verdict).
 */
export function streamOracle(bytes: Buffer, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Verdict & { envelopes: Envelope[]; pending: number } {
  const kinds: string[] = [];
  const envelopes: Envelope[] = [];
  let pos = 0;
  while (bytes.length - pos >= 4) {
    const length = bytes.readUInt32BE(pos);
    if (length > maxFrameBytes) return { kinds, envelopes, code: 'ERR_FRAME_TOO_LARGE', pending: 0 };
    if (bytes.length - pos - 4 < length) break;
    try {
      const e = decodeEnvelope(bytes.subarray(pos + 4, pos + 4 + length));
      kinds.push(e.kind);
      envelopes.push(e);
    } catch (err) {
      return { kinds, envelopes, code: (err as BulkheadError).code, pending: 0 };
    }
    pos += 4 + length;
  }
  return { kinds, envelopes, code: undefined, pending: bytes.length - pos };
}

/** True when something wrote onto Object.prototype (or Array.prototype). */
export function polluted(): boolean {
  return Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted') || ({} as { polluted?: unknown }).polluted !== undefined || ([] as unknown as { polluted?: unknown }).polluted !== undefined;
}
