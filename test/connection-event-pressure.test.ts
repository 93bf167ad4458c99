// emit()'s pacing (lib/connection/event-pressure.ts) in memory: room() waits while a megabyte
// or more of events waits for the reader, and resolves when the channel says a write brought
// the backlog under the mark (FramedChannel.onBacklogAtMost), with no 'drain' and no polling.
import t from 'tap';
import { createHook } from 'node:async_hooks';
import { EVENT_BACKLOG, EventPressure } from '../lib/connection/event-pressure.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { MemoryEnd } from './memory-pair.js';

/** A channel over an in-memory pair; the writer's stream takes `writerMark` bytes before write() returns false. */
function pair(writerMark: number) {
  const writerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: writerMark });
  const readerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: 4 * 1024 });
  writerEnd.peer = readerEnd;
  readerEnd.peer = writerEnd;
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => {} });
  return { channel, writerEnd, readerEnd };
}

const payload = 'x'.repeat(16 * 1024);
/** Sends events until more than the event mark waits. */
function flood(channel: FramedChannel): void {
  while (channel.writableLength < EVENT_BACKLOG.highWaterBytes + 64 * 1024) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
}

for (const writerMark of [16 * 1024, 8 * 1024 * 1024]) {
  t.test(`stream mark ${writerMark} bytes: room() waits for the reader without waking, then resolves under the mark`, async (t) => {
    const { channel, writerEnd, readerEnd } = pair(writerMark);
    const pressure = new EventPressure(channel);
    flood(channel);
    let immediates = 0;
    const hook = createHook({ init: (_id, type) => { if (type === 'Immediate') immediates++; } }).enable();
    let resolved = false;
    const room = pressure.room().then(() => (resolved = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    hook.disable();
    t.equal(resolved, false, 'waits while the reader does not read');
    t.ok(immediates <= 2, `${immediates} immediates while waiting`);
    if (writerMark > EVENT_BACKLOG.highWaterBytes) t.equal(writerEnd.writableNeedDrain, false, 'this stream never needs a drain: only the write completions tell');
    readerEnd.on('data', () => {});
    await room;
    t.ok(channel.writableLength < EVENT_BACKLOG.highWaterBytes, `resolved at ${channel.writableLength} bytes`);
    t.equal(pressure.room(), pressure.room(), 'under the mark: resolves at once (one settled promise)');
  });
}

t.test('the channel closes while room() waits: it resolves', async (t) => {
  const { channel } = pair(16 * 1024);
  const pressure = new EventPressure(channel);
  flood(channel);
  const room = pressure.room();
  channel.destroy();
  await room;
  t.pass('resolved on close');
});
