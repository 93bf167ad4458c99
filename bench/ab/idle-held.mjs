// node bench/ab/idle-held.mjs DIST
// CPU of one process holding a BacklogWatch on a channel whose peer does not read, for 1 s (stream mark 4 MiB: no 'drain').
const dist = process.argv[2];
const { BacklogWatch } = await import(`${dist}/lib/wire/backlog-watch.js`);
const { FramedChannel } = await import(`${dist}/lib/wire/framed-channel.js`);
const { MemoryEnd } = await import(`${dist}/test/memory-pair.js`);
const w = new MemoryEnd({ readableHighWaterMark: 4096, writableHighWaterMark: 4 << 20 });
const r = new MemoryEnd({ readableHighWaterMark: 4096, writableHighWaterMark: 4096 });
w.peer = r; r.peer = w;
const ch = new FramedChannel(w); ch.attach({ envelope() {}, closed() {} });
const watch = new BacklogWatch(ch, { highWaterBytes: 64 * 1024, stallMs: 60_000, stalled() {} });
for (let i = 0; i < 200; i++) ch.send({ kind: 'event', callId: 0, name: 't', payload: 'x'.repeat(1000) });
await new Promise((res) => setImmediate(res));
const c0 = process.cpuUsage(); const t0 = performance.now();
await new Promise((res) => setTimeout(res, 1000));
const c = process.cpuUsage(c0);
console.log(`${dist}: held=${watch.held} cpu ${((c.user + c.system) / 1000).toFixed(0)} ms in ${(performance.now() - t0).toFixed(0)} ms wall`);
process.exit(0);
