// How a helper paces its direct clients (lib/connection/direct-pace.ts), in memory: the bounds
// it holds one client to, and a client so far behind on service-wide events that it passes the
// event bound is cut off alone; the helper's other clients still get every event.
import t from 'tap';
import { EVENT_BACKLOG } from '../lib/connection/event-pressure.js';
import { broadcastTo, closeReport, directClientBacklog } from '../lib/connection/direct-pace.js';
import { clientHighWater as directClientHighWater } from '../lib/wire/backlog-watch.js';
import { untrustedPeerBacklog } from '../lib/wire/framed-channel.js';
import { rpcPair } from './memory-pair.js';

const MiB = 1024 * 1024;

t.test('bounds: the routed mark; the larger of the routed hard bound and the event bound + 1 MiB', async (t) => {
  t.equal(directClientHighWater(16 * MiB), 512 * 1024, 'default frames: 512 KiB');
  t.equal(directClientHighWater(64 * 1024), 512 * 1024);
  t.equal(directClientHighWater(1024), Math.min(512 * 1024, Math.floor(untrustedPeerBacklog(1024) / 2)), 'tiny frames: half the hard bound, at most 512 KiB');
  t.equal(directClientBacklog(16 * MiB), 33 * MiB, 'default frames: 33 MiB, as a routed client');
  t.equal(directClientBacklog(64 * 1024), EVENT_BACKLOG.maxBytes + MiB, 'small frames: no lower than what a routed client may leave queued in the helper');
  t.equal(directClientBacklog(64 * MiB), untrustedPeerBacklog(64 * MiB));
});

t.test('closeReport: only the codes a helper may report, with a bounded message', async (t) => {
  t.same(closeReport(undefined), {});
  t.same(closeReport({ code: 'ERR_NOT_PERMITTED', message: 'x' }), {}, 'not a code a helper closes a channel with');
  const report = closeReport({ code: 'ERR_BACKPRESSURE', message: 'y'.repeat(5000) });
  t.equal(report.code, 'ERR_BACKPRESSURE');
  t.equal(report.message?.length, 512);
});

t.test('a client past the event bound is cut off alone; the other client gets every event', async (t) => {
  const behind = rpcPair({ handlers: {} });
  const reading = rpcPair({ handlers: {} });
  await Promise.all([behind.client.ready, reading.client.ready]);
  behind.clientEnd.pause(); // this client stops reading
  const pad = 'x'.repeat(MiB);
  const events = 40; // 40 MiB: past the 32 MiB event bound for the client that does not read
  for (let i = 0; i < events; i++) {
    const sent = [broadcastTo(behind.server, 'tick', { i, pad }), broadcastTo(reading.server, 'tick', { i, pad })];
    await sent[1]; // the emitter awaits its reading client (the other's promise resolves once it is cut off)
  }
  const error = await behind.serverClosed;
  t.equal(error?.code, 'ERR_BACKPRESSURE', `cut off: ${error?.message ?? ''}`);
  t.ok(reading.serverChannel.open, 'the reading client\'s channel is open');
  await new Promise((resolve) => setImmediate(resolve));
  while (reading.broadcasts.length < events) await new Promise((resolve) => setImmediate(resolve));
  t.same(reading.broadcasts.map(([, p]) => (p as { i: number }).i), Array.from({ length: events }, (_, i) => i), 'every event reached the reading client, in order');
});
