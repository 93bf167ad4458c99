// In-memory client + server of one build (both sides in one process, no sockets): what cg.sh counts instructions of.
// node bench/ab/mem.mjs DIST calls|callsgated|conn|events|bytes64k N
// conn: the same calls through a Connection (what broker.connect() returns) over the in-memory client: its per-call work counted too.
const [dist, workload, nStr] = process.argv.slice(2);
const n = Number(nStr);
const { rpcPair } = await import(`${dist}/test/memory-pair.js`);
const { loadProtocol } = await import(`${dist}/lib/protocol/registry.js`);
const { newPlainTally, describeNonPlain } = await import(`${dist}/lib/wire/codec.js`);
const protocol = loadProtocol(`${dist}/../bench/fixtures/protocols`, 'com.bench.echo');
const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const TICK = MESSAGE;
// callsgated: the same calls through the helper's service-wide call gate (lib/connection/call-gate.ts), never full.
const gate = workload === 'callsgated' ? new (await import(`${dist}/lib/connection/call-gate.js`)).CallGate({ maxInFlight: 1024, maxQueued: 0 }, 'bench') : undefined;
const pair = rpcPair({ clientProtocol: protocol, serverProtocol: protocol, highWaterMark: 64 * 1024, server: gate === undefined ? undefined : { gate }, handlers: {
  echo: (p) => p, bytes: (p) => p, burst: ({ count }, ctx) => { for (let i = 0; i < count; i++) ctx.emit('tick', TICK); return { count }; },
} });
const data64 = Buffer.alloc(64 * 1024, 7);
// What Connection.call adds on the broker side: the params' plain-data check.
const call = (m, p) => { const t = newPlainTally?.() ; describeNonPlain(p, t); return pair.client.call(m, p, { noLargeBytes: t !== undefined && t.large === 0 }); };
const { Connection } = await import(`${dist}/lib/connection/connection.js`);
const conn = workload === 'conn' ? new Connection({ service: 'echo', protocol, current: () => pair.client, acquire: async () => pair.client, callMeta: undefined, detach: () => {} }) : undefined;
async function run(count) {
  if (workload === 'conn') {
    let sent = 0;
    const lane = async () => { while (sent < count) { sent++; await conn.call('echo', MESSAGE); } };
    await Promise.all(Array.from({ length: 256 }, lane));
  } else if (workload === 'calls' || workload === 'callsgated') {
    let sent = 0;
    const lane = async () => { while (sent < count) { sent++; await call('echo', MESSAGE); } };
    await Promise.all(Array.from({ length: 256 }, lane));
  } else if (workload === 'events') {
    const before = pair.broadcasts.length;
    for (let done = 0; done < count; done += 1000) { await call('burst', { count: 1000 }); pair.broadcasts.length = 0; }
  } else if (workload === 'bytes64k') {
    for (let i = 0; i < count; i++) await call('bytes', { data: data64 });
  }
}
await run(Math.min(n, 2000));
const c0 = process.cpuUsage(); const t0 = performance.now();
await run(n);
const c1 = process.cpuUsage(c0);
console.log(JSON.stringify({ cpu: (c1.user + c1.system) / n, wall: (performance.now() - t0) * 1000 / n }));
process.exit(0);
