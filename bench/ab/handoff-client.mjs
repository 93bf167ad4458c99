// The client's CPU per pipelined echo call over a handed-off daemon channel vs through an embedded broker, in one
// process, alternating (the daemon scenario's two paths), then a CPU profile of each (self time per call by function).
// node bench/ab/handoff-client.mjs [ROUNDS=8] [CALLS=60000] [PROFILE_CALLS=200000]   (after npm run build)
import { fork } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
// (helper CPU from /proc in clock ticks: 10 ms / CALLS is its resolution)
const dist = new URL('../../dist/', import.meta.url);
const { RemoteBroker } = await import(new URL('lib/daemon/remote-broker.js', dist));
const { bulkheadTransport, MESSAGE } = await import(new URL('bench/common/transports.js', dist));
const { FIXTURES } = await import(new URL('bench/common/report.js', dist));
const { pipelined } = await import(new URL('bench/common/measure.js', dist));
const [rounds = 8, calls = 60000, profileCalls = 200000] = process.argv.slice(2).map(Number);

const daemon = fork(fileURLToPath(new URL('bench/scenarios/daemon-process.js', dist)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const { socketPath, identity } = await new Promise((resolve) => daemon.once('message', resolve));
const remote = new RemoteBroker(socketPath, identity, { protocolsDir: `${FIXTURES}protocols` });
const conn = remote.connect('echo', { protocol: 'com.bench.echo' });
await conn.call('echo', MESSAGE);
const { cpuMicrosOf, nodePidOf } = await import(new URL('bench/common/proc.js', dist));
const daemonHelper = await new Promise((resolve) => {
  daemon.on('message', (m) => { if (m.t === 'pid') resolve(m.pid); });
  daemon.send({ t: 'pid', service: 'echo' });
});
const direct = { name: 'daemon-direct', call: (m, p) => conn.call(m, p), peerPid: nodePidOf(daemonHelper) };
const embedded = await bulkheadTransport('embedded');
const both = [embedded, direct];
for (const t of both) await pipelined(t, 20000);
const cpu = new Map(both.map((t) => [t, []]));
const helperCpu = new Map(both.map((t) => [t, []]));
const rate = new Map(both.map((t) => [t, []]));
for (let r = 0; r < rounds; r++) {
  for (const t of r % 2 ? [...both].reverse() : both) {
    const p = await pipelined(t, calls);
    cpu.get(t).push(p.cpuSelf);
    helperCpu.get(t).push(p.cpuPeer);
    rate.get(t).push(p.rate);
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const t of both) console.log(`${t.name.padEnd(14)} client CPU µs/call median ${med(cpu.get(t)).toFixed(2)} [${cpu.get(t).map((v) => v.toFixed(2)).join(' ')}]  calls/s median ${(med(rate.get(t)) / 1000).toFixed(0)}k; helper CPU µs/call median ${med(helperCpu.get(t)).toFixed(3)} [${helperCpu.get(t).map((v) => v.toFixed(2)).join(' ')}]`);
console.log(`node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

if (profileCalls > 0) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  for (const t of both) {
    await session.post('Profiler.start');
    await pipelined(t, profileCalls);
    const { profile } = await session.post('Profiler.stop');
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    let total = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      const n = byId.get(profile.samples[i]);
      const f = n.callFrame;
      if (f.functionName === '(idle)') continue;
      const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/node_modules\//, 'npm:').replace(/^.*\/dist\//, '')}:${f.lineNumber + 1}`;
      const d = profile.timeDeltas[i] ?? 0;
      self.set(key, (self.get(key) ?? 0) + d);
      total += d;
    }
    console.log(`-- ${t.name}: ${(total / profileCalls * 1000).toFixed(0)} ns sampled per call (not idle); self ns per call:`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 28)) console.log(`${(v / profileCalls * 1000).toFixed(0).padStart(6)}  ${k}`);
  }
}
await remote.close();
await embedded.close();
daemon.disconnect();
