// Helper: SHA-256 plus gzip and brotli compression of a document, chunk by chunk,
// with a `progress` event per chunk and a decompression round-trip check.
// Pure computation on its params (node:crypto and node:zlib only), so its manifest
// can give it the `pure-compute` sandbox profile.
import { createHash } from 'node:crypto';
import { brotliDecompressSync, constants, createBrotliCompress, createGzip, gunzipSync } from 'node:zlib';
import { serve } from 'bulkhead/service';

const DEFAULT_CHUNK = 256 * 1024;

/** A zlib stream we feed chunk by chunk, counting and keeping its output. */
function compressor(stream) {
  const out = [];
  let bytes = 0;
  stream.on('data', (b) => { out.push(b); bytes += b.length; });
  const ended = new Promise((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject); });
  return {
    /** Resolves once the chunk went through the compressor. */
    write: (chunk) => new Promise((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve()))),
    async end() {
      stream.end();
      await ended;
      return { bytes, data: Buffer.concat(out, bytes) };
    },
    destroy: () => stream.destroy(),
  };
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

serve('com.bulkhead.demo.digest', {
  digest: async ({ name, text, gzipLevel = 9, brotliQuality = 11, chunkBytes = DEFAULT_CHUNK, pauseMs = 0 }, ctx) => {
    const started = performance.now();
    const input = Buffer.from(text, 'utf8');
    const hash = createHash('sha256');
    const gzip = compressor(createGzip({ level: gzipLevel }));
    const brotli = compressor(createBrotliCompress({
      params: { [constants.BROTLI_PARAM_QUALITY]: brotliQuality, [constants.BROTLI_PARAM_SIZE_HINT]: input.length },
    }));
    const chunks = Math.ceil(input.length / chunkBytes);
    try {
      for (let i = 0; i < chunks; i++) {
        ctx.signal.throwIfAborted(); // the caller cancelled, timed out, or the broker is stopping us
        const chunk = input.subarray(i * chunkBytes, Math.min(input.length, (i + 1) * chunkBytes));
        hash.update(chunk);
        await Promise.all([gzip.write(chunk), brotli.write(chunk)]);
        if (chunks > 1) ctx.emit('progress', { name, doneBytes: Math.min(input.length, (i + 1) * chunkBytes), totalBytes: input.length });
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    } catch (err) {
      gzip.destroy();
      brotli.destroy();
      throw err;
    }
    const [gz, br] = await Promise.all([gzip.end(), brotli.end()]);
    const digest = hash.digest('hex');
    const ratio = (n) => (input.length === 0 ? 0 : Math.round((n / input.length) * 10_000) / 10_000);
    return {
      name,
      bytes: input.length,
      sha256: digest,
      gzip: { bytes: gz.bytes, ratio: ratio(gz.bytes), roundTrip: sha256(gunzipSync(gz.data)) === digest },
      brotli: { bytes: br.bytes, ratio: ratio(br.bytes), roundTrip: sha256(brotliDecompressSync(br.data)) === digest },
      chunks,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
  },
});
