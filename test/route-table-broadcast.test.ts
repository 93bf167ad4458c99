// A broadcast the helper sends reaches every route. When its body lies in the read buffer every
// channel shares (lib/wire/shared-read-buffers.ts), it is copied once for all routes, not once per
// route: every route gets the same kept body, none a view of the shared buffer.
import t from 'tap';
import { RouteTable } from '../lib/broker/route-table.js';
import type { RouteTarget } from '../lib/broker/route.js';
import { decodeEnvelope, encodeEnvelope } from '../lib/wire/envelope.js';
import { inSharedReadBuffer, sharedRead } from '../lib/wire/shared-read-buffers.js';

t.test('a broadcast body in the shared read buffer is copied once for every route', (t) => {
  const table = new RouteTable('svc');
  const got: Buffer[][] = [];
  for (let i = 0; i < 3; i++) {
    const bodies: Buffer[] = [];
    got.push(bodies);
    table.open({ peer: { name: `c${i}` }, broadcast: (body: Buffer) => bodies.push(body), deliver: () => {}, interrupted: () => {}, invalidated: () => {}, pendingCount: 0 } as unknown as RouteTarget);
  }
  const frame = encodeEnvelope({ kind: 'event', callId: 0, name: 'tick', payload: { n: 1 } });
  const shared = sharedRead();
  frame.copy(shared, 0);
  const body = shared.subarray(4, frame.length);
  t.equal(table.deliver(decodeEnvelope(body), body), false, 'the broker\'s own connections hear it too');
  const [first] = got[0]!;
  t.ok(first !== undefined && !inSharedReadBuffer(first), 'the routes get a kept copy, not a view of the shared buffer');
  t.same(got.map((bodies) => bodies.length), [1, 1, 1], 'every route heard it once');
  t.ok(got.every(([b]) => b === first), 'all of them the same copy');
  shared.fill(0, 0, frame.length);
  t.same(decodeEnvelope(first!), { kind: 'event', callId: 0, name: 'tick', payload: { n: 1 } }, 'and it outlives the next read');
  t.end();
});
