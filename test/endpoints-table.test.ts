// The endpoint table alone (fast tier, no processes): binding, forgery, expiry,
// incarnations, tracking of open connections and the per-issuer cap, on an
// injected clock.
import t from 'tap';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { EndpointTable, parseReceiver, type EndpointOpener } from '../lib/broker/endpoint-table.js';

const granted = () => true;
function table(options: { ttlMs?: number; maxPerIssuer?: number } = {}) {
  let now = 1_000;
  const tab = new EndpointTable({ now: () => now, ...options });
  return { tab, advance: (ms: number) => void (now += ms) };
}
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isBulkheadError(err)) return `${err.code}:${String(err.data.reason)}`;
    throw err;
  }
  return 'ok';
}

const app: EndpointOpener = { kind: 'app' };
const clientA = (uid = 1000): EndpointOpener => ({ kind: 'client', name: 'app-a', uid });

t.test('only the bound receiver opens an endpoint', async (t) => {
  const { tab } = table();
  const forA = tab.mint('issuer', 'echo', { kind: 'client', name: 'app-a', uid: 1000 });
  t.equal(codeOf(() => tab.check(forA, clientA(), granted)), 'ok');
  t.equal(codeOf(() => tab.check(forA, clientA(1001), granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'same identity, another uid');
  t.equal(codeOf(() => tab.check(forA, { kind: 'client', name: 'app-b', uid: 1000 }, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'another identity, same uid');
  t.equal(codeOf(() => tab.check(forA, { kind: 'service', name: 'app-a' }, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'a service named like the identity');
  t.equal(codeOf(() => tab.check(forA, app, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver');
  const anyUid = tab.mint('issuer', 'echo', { kind: 'client', name: 'app-a' });
  t.equal(codeOf(() => tab.check(anyUid, clientA(4242), granted)), 'ok', 'a binding without uid admits the identity from any uid');
  const forService = tab.mint('issuer', 'echo', { kind: 'service', name: 'holder' });
  t.equal(codeOf(() => tab.check(forService, { kind: 'service', name: 'holder' }, granted)), 'ok');
  t.equal(codeOf(() => tab.check(forService, { kind: 'client', name: 'holder', uid: 0 }, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'a client named like the service');
  const forApp = tab.mint('issuer', 'echo', { kind: 'app' });
  t.equal(codeOf(() => tab.check(forApp, app, granted)), 'ok');
  t.equal(codeOf(() => tab.check(forApp, { kind: 'service', name: 'main-app' }, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'a service named main-app is not the app');
});

t.test('tokens are unguessable and unalterable; a stranger learns nothing of a dead endpoint', async (t) => {
  const { tab } = table();
  const tokens = new Set(Array.from({ length: 1000 }, () => tab.mint('issuer', 'echo', { kind: 'app' }, 60_000).token));
  t.equal(tokens.size, 1000, 'no two alike');
  const ep = tab.mint('issuer', 'echo', { kind: 'client', name: 'app-a' });
  t.equal(codeOf(() => tab.check({ service: 'other', token: ep.token }, clientA(), granted)), 'ERR_ENDPOINT_INVALID:tampered');
  t.equal(codeOf(() => tab.check({ service: 'echo', token: ep.token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) }, clientA(), granted)), 'ERR_ENDPOINT_INVALID:unknown');
  for (const bad of [null, [], 'x', { service: 'echo', token: 'short' }, { service: 'echo', token: ep.token, more: 1 }, { service: '../x', token: ep.token }, { ['__proto__']: { service: 'echo' } }]) {
    t.equal(codeOf(() => tab.check(bad, clientA(), granted)), 'ERR_ENDPOINT_INVALID:malformed', JSON.stringify(bad));
  }
  tab.died('echo', 'stopped');
  t.equal(codeOf(() => tab.check(ep, { kind: 'client', name: 'app-b', uid: 1 }, granted)), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'the binding is checked before liveness');
  t.equal(codeOf(() => tab.check(ep, clientA(), granted)), 'ERR_ENDPOINT_DEAD:stopped');
});

t.test('death: incarnations, closers, and the issuer losing its right', async (t) => {
  const { tab } = table();
  const ep = tab.mint('issuer', 'echo', { kind: 'app' });
  const other = tab.mint('issuer', 'other', { kind: 'app' });
  const closed: BulkheadError[] = [];
  const untrack = tab.track(ep.token, (e) => closed.push(e));
  tab.track(ep.token, (e) => closed.push(e));
  t.equal(codeOf(() => tab.check(ep, app, () => false)), 'ERR_ENDPOINT_DEAD:not-in-connects', 'the issuer\'s current connects are checked at opening');
  untrack();
  tab.died('echo', 'removed');
  t.same(closed.map((e) => [e.code, e.data.reason, e.data.issuer]), [['ERR_ENDPOINT_DEAD', 'removed', 'issuer']], 'the connection still open was closed, the untracked one not');
  t.equal(codeOf(() => tab.check(other, app, granted)), 'ok', 'another service\'s endpoints live on');
  const next = tab.mint('issuer', 'echo', { kind: 'app' });
  t.equal(codeOf(() => tab.check(next, app, granted)), 'ok', 'an endpoint minted in the new incarnation opens');
  t.equal(codeOf(() => tab.check(ep, app, granted)), 'ERR_ENDPOINT_DEAD:removed', 'the old one stays dead');
});

t.test('expiry: unopened endpoints expire and are forgotten; an open connection keeps one', async (t) => {
  const { tab, advance } = table({ ttlMs: 100 });
  const idle = tab.mint('issuer', 'echo', { kind: 'app' });
  const held = tab.mint('issuer', 'echo', { kind: 'app' });
  tab.track(held.token, () => undefined);
  advance(101);
  t.equal(codeOf(() => tab.check(idle, app, granted)), 'ERR_ENDPOINT_INVALID:expired');
  t.equal(codeOf(() => tab.check(held, app, granted)), 'ok', 'a connection is open from it: a re-broker may present it again');
  t.equal(codeOf(() => tab.check(idle, app, granted)), 'ERR_ENDPOINT_INVALID:unknown', 'then forgotten');
  tab.mint('issuer', 'echo', { kind: 'app' });
  t.equal(tab.size, 2, 'a mint sweeps what expired');
  t.equal(codeOf(() => tab.mint('issuer', 'echo', { kind: 'app' }, 0)), 'ERR_INVALID_OPTION:undefined');
  t.equal(codeOf(() => tab.mint('issuer', 'echo', { kind: 'app' }, 3_600_001)), 'ERR_INVALID_OPTION:undefined');
});

t.test('one issuer holds a bounded number of endpoints', async (t) => {
  const { tab, advance } = table({ maxPerIssuer: 3, ttlMs: 10 });
  for (let i = 0; i < 3; i++) tab.mint('issuer', 'echo', { kind: 'app' });
  t.equal(codeOf(() => tab.mint('issuer', 'echo', { kind: 'app' })), 'ERR_BACKPRESSURE:undefined');
  t.equal(codeOf(() => tab.mint('other-issuer', 'echo', { kind: 'app' })), 'ok', 'per issuer');
  advance(11);
  t.equal(codeOf(() => tab.mint('issuer', 'echo', { kind: 'app' })), 'ok', 'expired ones no longer count');
});

t.test('receivers on the wire', async (t) => {
  t.same(parseReceiver({ kind: 'app' }), { kind: 'app' });
  t.same(parseReceiver({ kind: 'service', name: 'holder' }), { kind: 'service', name: 'holder' });
  t.same(parseReceiver({ kind: 'client', name: 'app-a', uid: 0 }), { kind: 'client', name: 'app-a', uid: 0 });
  t.same(parseReceiver({ kind: 'client', name: 'app-a', uid: null }), { kind: 'client', name: 'app-a' });
  for (const bad of [undefined, {}, { kind: 'service' }, { kind: 'service', name: '../x' }, { kind: 'client', name: 'a', uid: -1 }, { kind: 'client', name: 'a', uid: 1.5 }, { kind: 'root' }]) {
    t.equal(codeOf(() => parseReceiver(bad)), 'ERR_INVALID_PARAMS:undefined', JSON.stringify(bad) ?? 'undefined');
  }
});
