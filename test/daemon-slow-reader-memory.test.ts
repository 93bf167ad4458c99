/**
 * The slow-reader memory attack end to end (round twelve, audit13): audit12 found that a peer that stops reading
 * could keep one of the encoders' 64 KiB slabs alive per waiting frame (test/wire-slow-reader-pins.test.ts, two
 * sockets in one process) and fixed it in framed-channel.ts / outbox.ts. Here the attack is made on a real daemon
 * by a real client process (test/fixtures/hardening/slow-reader-attacker.js): it authenticates, stops reading
 * `STALLED` routed connections and sends calls to an unknown method on each as fast as it can (the daemon answers
 * each with an error frame placed in its slab), while a connection of its own that reads sends calls with long
 * unknown names (6 KB answers, moving the slab on between the stalled ones' answers) and a well-behaved client
 * calls the service. Asserted: the daemon's ArrayBuffer memory after a full GC, sampled while the attack runs,
 * stays under STALLED × maxBufferedBytes plus a margin; each stalled connection is cut off with ERR_BACKPRESSURE;
 * the well-behaved client's calls succeed. Positive controls: the attacker's calls went out (counts, bytes written),
 * the mover's answers were read, the daemon logged the cut-offs. Caveat: with audit12's fix reverted this test still
 * passes (+3.1 MiB): the attack as made here does not reproduce the pin end to end (bench/README.md, "End to end
 * (audit13)"); it holds the bound, it is not a fail-without-fix test.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { untrustedPeerBacklog } from '../lib/wire/framed-channel.js';
import { FIXTURES, recordUncaught } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const uncaught = recordUncaught();
const STALLED = 3;
const MAX_CALLS = 100_000;
const maxFrameBytes = 64 * 1024;

/** ArrayBuffer bytes alive after a full collection. */
function liveArrayBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

t.test('a client that stops reading and floods calls cannot pin the daemon\'s memory past its backlog bound', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-slowmem-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'bulkhead.json');
  writeFileSync(config, JSON.stringify({ root: FIXTURES, maxFrameBytes, services: [{ name: 'flood', entry: './hardening/flood-service.js', protocol: 'com.test.hardening-flood', clients: ['*'], launch: { throttleMs: 0 } }] }));
  // The run's test CA (test/shared-ca.ts): the daemon loads a copy, clients take identities it issued once per run.
  await seedStateDir(join(work, 'state'));
  const disconnects: Record<string, unknown>[] = [];
  let sampleAtCutOff: (() => void) | undefined;
  const daemon = await Daemon.start({
    config,
    settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') },
    log: (e) => {
      if (e['event'] !== 'disconnect') return;
      disconnects.push(e);
      // One more sample when the first stalled connection is cut off: the others' backlogs are near their largest.
      if (e['client'] === 'stalled' && sampleAtCutOff !== undefined) {
        sampleAtCutOff();
        sampleAtCutOff = undefined;
      }
    },
  });
  t.teardown(() => daemon.close());
  const identityFile = join(work, 'attacker.json');
  writeFileSync(identityFile, JSON.stringify(await sharedIdentity('stalled')));

  const good = new RemoteBroker(daemon.socketPath, await sharedIdentity('other'), { protocolsDir: join(FIXTURES, 'protocols'), direct: false });
  t.teardown(() => good.close());
  const conn = good.connect('flood', { protocol: 'com.test.hardening-flood' });
  t.same(await conn.call('hold', { token: 'warm', ms: 0 }), { token: 'warm' });

  const before = liveArrayBuffers();
  const child = spawn(process.execPath, [join(FIXTURES, 'hardening', 'slow-reader-attacker.js'), daemon.socketPath, identityFile, join(FIXTURES, 'protocols'), String(STALLED), String(MAX_CALLS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  // While the attack runs: the well-behaved client calls on, and the daemon's live ArrayBuffers are sampled after GC.
  // A sample's two full collections stop the daemon too (it runs in this process), so the next one waits at least
  // 100 ms and three times as long as this one took: the attack keeps three quarters of the time or more. A fixed
  // 100 ms interval had the process collecting most of the time (under tap's runner, Node 20: 154 samples in 43 s, and
  // the attack cut short by the stall watch before the backlog bound). Pinned memory only grows until a cut-off, and
  // one slab pinned per ~10 waiting frames (the mover moves it) passes the bound within the attack's first quarter, so
  // a coarser grid still sees it; one more sample is taken at the first cut-off, when the backlogs are largest.
  let peak = -Infinity;
  let samples = 0;
  let sampler: NodeJS.Timeout | undefined;
  const measure = () => {
    samples++;
    peak = Math.max(peak, liveArrayBuffers() - before);
  };
  const sample = () => {
    const started = performance.now();
    measure();
    sampler = setTimeout(sample, Math.max(100, 3 * (performance.now() - started)));
  };
  sampler = setTimeout(sample, 100);
  sampleAtCutOff = measure;
  let served = 0;
  let failed: unknown;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    try {
      const r = await conn.call('hold', { token: `t${served}`, ms: 0 });
      if ((r as { token: string }).token === `t${served}`) served++;
    } catch (err) {
      failed ??= err;
    }
  }
  clearTimeout(sampler);

  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { stalled: Array<{ sent: number; bytesWritten: number; ended: string | null }>; mover: { calls: number; bytesRead: number } };
  const bound = STALLED * untrustedPeerBacklog(maxFrameBytes) + 8 * MiB;
  const cutOff = disconnects.filter((e) => e['client'] === 'stalled' && e['code'] === 'ERR_BACKPRESSURE');
  t.comment(`attacker: ${JSON.stringify(report)}; daemon log: ${cutOff.map((e) => String(e['message'])).join(' | ')}; good client served ${served} calls; ${samples} samples`);
  // Positive controls: the calls went out, the mover's answers came back (the slab moved ~ once per 10 of them).
  for (const [i, s] of report.stalled.entries()) {
    t.ok(s.sent > 1000 && s.bytesWritten > 50_000, `stalled connection ${i} sent ${s.sent} calls (${s.bytesWritten} bytes)`);
    t.equal(s.ended, 'closed', `stalled connection ${i} was closed by the daemon (the code is in its log: below)`);
  }
  t.ok(report.mover.bytesRead > 8 * MiB, `the mover read ${(report.mover.bytesRead / MiB).toFixed(1)} MiB of answers (${report.mover.calls} calls: ~${Math.round(report.mover.bytesRead / 65536)} slabs' worth)`);
  t.equal(cutOff.length, STALLED, 'the daemon logged each stalled connection\'s cut-off');
  t.equal(failed, undefined, 'every call of the well-behaved client succeeded');
  t.ok(served > 20, `the well-behaved client was served meanwhile (${served} calls)`);
  t.ok(peak < bound, `daemon ArrayBuffers after GC, peak during the attack: +${(peak / MiB).toFixed(1)} MiB (bound ${(bound / MiB).toFixed(1)} MiB: ${STALLED} × maxBufferedBytes ${(untrustedPeerBacklog(maxFrameBytes) / MiB).toFixed(3)} MiB + 8 MiB)`);
});

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
