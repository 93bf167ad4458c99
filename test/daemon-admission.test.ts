// The daemon's pure pieces, in memory: the pending-connection caps, the
// clients policy with uid/gid entries, and the handshake reader's bounds.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionGate } from '../lib/daemon/admission.js';
import { admits } from '../lib/daemon/client-policy.js';
import { HandshakeReader, MAX_HANDSHAKE_PENDING_BYTES } from '../lib/daemon/handshake-io.js';
import { resolveDaemonSettings } from '../lib/daemon/daemon-settings.js';
import { acceptedPair, expectCode, rejection } from './helpers.js';

t.test('AdmissionGate: the newcomer is admitted, the oldest of the uid at fault evicted', async (t) => {
  const gate = new AdmissionGate<string>({ perUid: 2, total: 3 });
  t.same(gate.admit('a1', 1), []);
  t.same(gate.admit('a2', 1), []);
  t.same(gate.admit('a3', 1), [{ conn: 'a1', reason: 'per-uid-limit' }], 'uid 1 over its cap: its oldest goes');
  t.same(gate.admit('b1', 2), []);
  t.same(gate.admit('c1', 3), [{ conn: 'a2', reason: 'total-limit' }], 'total cap: the uid holding the most pays');
  t.equal(gate.size, 3);
  gate.release('b1');
  gate.release('b1');
  t.equal(gate.pendingFor(2), 0, 'release is idempotent');
  t.same(gate.admit('d1', 4), []);
  t.same(gate.all().sort(), ['a3', 'c1', 'd1']);
});

t.test('clients entries: names, "*", uid:N, gid:N and NAME@uid:N', async (t) => {
  const peer = { name: 'app-a', uid: 1000, gid: 100 };
  t.ok(admits(['app-a'], peer));
  t.ok(admits(['*'], peer));
  t.ok(admits(['uid:1000'], peer));
  t.ok(admits(['gid:100'], peer));
  t.ok(admits(['app-a@uid:1000'], peer));
  t.ok(admits(['*@gid:100'], peer));
  t.notOk(admits(['app-b', 'uid:1001', 'gid:101', 'app-a@uid:1001', 'app-b@uid:1000'], peer), 'each part must hold');
  t.notOk(admits(['uid:', 'uid:abc', 'user:1000', ''], peer), 'unparseable entries admit nobody');
  t.notOk(admits([], peer));
  expectCode(t, () => resolveDaemonSettings({ controlClients: ['admin', 'uid:x'] }, '/'), 'ERR_INVALID_MANIFEST', 'a bad controlClients entry');
  expectCode(t, () => resolveDaemonSettings({ maxUnauthenticated: 0 }, '/'), 'ERR_INVALID_MANIFEST', 'a cap of 0');
  t.match(resolveDaemonSettings({}, '/'), { handshakeTimeoutMs: 5000, maxUnauthenticated: 128, maxUnauthenticatedPerUid: 32 }, 'documented defaults');
});

t.test('HandshakeReader: more bytes than any handshake needs fail it, and it stops reading', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-reader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { client, peer } = await acceptedPair(t, join(dir, 's.sock'));
  const reader = new HandshakeReader(peer);
  // Nobody asks for a message (as while the daemon verifies one): bytes pile up until the bound.
  let seen = 0;
  const over = new Promise<void>((resolve) => peer.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > MAX_HANDSHAKE_PENDING_BYTES) resolve();
  }));
  client.write(Buffer.alloc(4 * MAX_HANDSHAKE_PENDING_BYTES));
  await over;
  const err = await rejection(reader.next(60_000));
  t.equal(err.code, 'ERR_FRAME_TOO_LARGE');
  t.equal(err.data['reason'], 'too-many-bytes');
  t.equal(peer.isPaused(), true, 'the socket is paused: nothing more is read');
  t.ok(seen < 4 * MAX_HANDSHAKE_PENDING_BYTES, `reading stopped after ${seen} of ${4 * MAX_HANDSHAKE_PENDING_BYTES} bytes`);
  t.equal((await rejection(reader.next(10))).code, 'ERR_FRAME_TOO_LARGE', 'every later read fails the same way');
  t.throws(() => reader.release(), { code: 'ERR_FRAME_TOO_LARGE' }, 'a failed reader cannot hand the socket over');
});
