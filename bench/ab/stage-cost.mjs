// CPU of the receive side of one large frame, in this process, without sockets: FrameDecoder of DIST fed as
// socket-reads.ts feeds it after a large frame (a 4 KiB probe read with the header, then the kernel's reads, here
// copies of at most READ bytes (default 212992, a Unix socket's usual), straight into whatever bodyRemainder gives,
// else a 64 KiB chunk). FRAMES frames of SIZE body bytes after WARM (20) untimed ones; prints µs per frame per run.
// RELEASE=1: each body is given back (releaseBytes), so bodies come from the pool as with the bulkhead-release
// transport; else every body is fresh memory, as for a caller that keeps its bytes.
// node bench/ab/stage-cost.mjs DIST SIZE FRAMES RUNS
const [dist, sizeS, framesS, runsS] = process.argv.slice(2);
const { FrameDecoder } = await import(`${dist}/lib/wire/frame-decoder.js`);
const { releaseBytes } = await import(`${dist}/lib/wire/body-pool.js`);
const size = Number(sizeS);
const read = Number(process.env.READ ?? 212992);
const wire = Buffer.alloc(4 + size, 7);
wire.writeUInt32BE(size, 0);
const decoder = new FrameDecoder(32 * 1024 * 1024);
const one = () => {
  let at = Math.min(4096, wire.length);
  let body = decoder.push(wire.subarray(0, at))[0];
  while (body === undefined) {
    const rest = decoder.bodyRemainder(16 * 1024);
    if (rest !== undefined) {
      const n = Math.min(rest.length, read, wire.length - at);
      wire.copy(rest, 0, at, at + n);
      at += n;
      body = decoder.filled(n);
    } else {
      const n = Math.min(65536, wire.length - at);
      body = decoder.push(wire.subarray(at, at + n))[0];
      at += n;
    }
  }
  if (body.length !== size) throw new Error('bad body');
  if (process.env.RELEASE === '1') releaseBytes(body);
};
for (let i = 0; i < Number(process.env.WARM ?? 20); i++) one();
const out = [];
for (let r = 0; r < Number(runsS); r++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < Number(framesS); i++) one();
  const c = process.cpuUsage(c0);
  out.push(Math.round((c.user + c.system) / Number(framesS)));
}
console.log(`${dist} ${size}${process.env.RELEASE === '1' ? ' release' : ''}: µs per frame ${out.join(' ')}`);
