// A cold helper's first read of fd 3 (FramedChannel.readWaiting, lib/wire/socket-reads.ts readWaitingNow) runs before
// its event loop's first turn, on whatever its broker wrote before it started. That read must treat those bytes as any
// read does: a frame cut anywhere (inside its header, inside its body) is completed by the loop's reads; an oversize
// header or a body that is no CBOR ends the channel with the coded error frame and the helper exits, never a hang or a
// crash of another kind. Real helper processes (test/fixtures/first-read-turn-service.js), fd 3 a socket this test holds
// the other end of; the rest of a cut frame is written only once the helper's loop turned (after its first read).
// Positive control: the whole hello and call written at once are answered.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { HELPER_ENV } from '../lib/wire/helper-env.js';
import { loadProtocol } from '../lib/protocol/registry.js';
import { FIXTURES } from './helpers.js';

const protocol = loadProtocol(join(FIXTURES, 'protocols'), 'com.test.echo');
const hello = encodeEnvelope({ kind: 'hello', role: 'client', protocol: protocol.name, version: protocol.version, schemaHash: protocol.hash, info: {} });
const call = encodeEnvelope({ kind: 'call', id: 1, method: 'echo', params: { text: 'first' }, meta: null });

interface Helper { fd3: Socket; got: Envelope[]; next(kind: Envelope['kind']): Promise<Envelope>; turned: Promise<void>; exited: Promise<number | null> }

/** Starts the echo helper with `first` already in its fd 3 (written before its node ran any code). */
function helper(t: Test, first: Buffer): Helper {
  const child = spawn(process.execPath, [join(FIXTURES, 'first-read-turn-service.js')], {
    cwd: FIXTURES,
    env: { PATH: process.env['PATH'] ?? '', [HELPER_ENV.protocolFile]: join(FIXTURES, 'protocols', 'com.test.echo.json') },
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => { child.kill('SIGKILL'); });
  const fd3 = child.stdio[3] as Socket;
  fd3.write(first);
  const decoder = new FrameDecoder();
  const got: Envelope[] = [];
  const waiters: Array<() => void> = [];
  fd3.on('data', (chunk: Buffer) => {
    for (const body of decoder.push(chunk)) got.push(decodeEnvelope(Buffer.from(body)));
    for (const wake of waiters.splice(0)) wake();
  });
  fd3.on('error', () => undefined);
  let stderr = '';
  const turned = new Promise<void>((resolve) => child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.includes('turned\n')) resolve();
  }));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const next = async (kind: Envelope['kind']): Promise<Envelope> => {
    for (;;) {
      const found = got.find((e) => e.kind === kind);
      if (found !== undefined) return found;
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited.then(() => { throw new Error(`the helper exited before its ${kind}`); })]);
    }
  };
  return { fd3, got, next, turned, exited };
}

t.test('control: the hello and the first call, whole, are answered', async (t) => {
  const h = helper(t, Buffer.concat([hello, call]));
  t.match(await h.next('reply'), { kind: 'reply', id: 1, result: { text: 'first' } });
});

// Cut points in the call frame: inside its 4-byte header, right after it, inside its body.
for (const cut of [1, 3, 4, 9]) {
  t.test(`a call cut ${cut} bytes in: the first read keeps the part, the loop completes it`, async (t) => {
    const h = helper(t, Buffer.concat([hello, call.subarray(0, cut)]));
    await h.turned; // its first read (before the loop's first turn) took the part
    h.fd3.write(call.subarray(cut));
    t.match(await h.next('reply'), { kind: 'reply', id: 1, result: { text: 'first' } }, 'answered, intact');
  });
}

t.test('a large call cut in its body (a pooled body collected over reads) is answered intact', async (t) => {
  const text = 'x'.repeat(40_000);
  const big = encodeEnvelope({ kind: 'call', id: 2, method: 'echo', params: { text }, meta: null });
  const h = helper(t, Buffer.concat([hello, big.subarray(0, 20_000)]));
  await h.turned;
  h.fd3.write(big.subarray(20_000));
  const reply = await h.next('reply');
  t.equal((reply as Extract<Envelope, { kind: 'reply' }>).id, 2);
  t.equal(((reply as Extract<Envelope, { kind: 'reply' }>).result as { text: string }).text, text, 'the echo is the text sent');
});

for (const [what, first, code] of [
  ['an oversize header first', Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0]), 'ERR_FRAME_TOO_LARGE'],
  ['an oversize header after the hello', Buffer.concat([hello, Buffer.from([0x7f, 0xff, 0xff, 0xff])]), 'ERR_FRAME_TOO_LARGE'],
  ['a body that is no CBOR', Buffer.from([0, 0, 0, 2, 0xff, 0xff]), 'ERR_BAD_FRAME'],
] as const) {
  t.test(`${what}: the helper answers with ${code} and exits`, async (t) => {
    const h = helper(t, first);
    const error = await h.next('error');
    t.match(error, { kind: 'error', id: 0, error: { code } }, 'the coded error frame');
    t.not(await h.exited, null, 'the helper exited (no hang, no signal)');
    t.notOk(h.got.some((e) => e.kind === 'reply'), 'nothing was answered');
  });
}
