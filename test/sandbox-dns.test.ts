// DNS for network "full" behind pasta, tried for real. The host's resolver
// sits on a loopback address other than 127.0.0.1 (systemd-resolved's stub,
// 127.0.0.53): the test runs a tiny DNS server there, and points the broker at
// a resolv.conf naming it and at an upstream list (BULKHEAD_RESOLV_CONF,
// BULKHEAD_RESOLV_UPSTREAM; the machine's own files stay as they are). The
// helper, in a network namespace of its own, must resolve a made-up name no
// other server knows through its /etc/resolv.conf, with c-ares and with
// getaddrinfo. The upstream the test lists is the namespace's gateway, which
// pasta maps to the host's 127.0.0.1, where the same server also listens.
// Positive controls: the stub's address does not answer from inside (so the
// host's file as is would fail), and 127.0.0.1 does (pasta forwards its ports,
// so such a file is left alone).
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { probeHost } from '../lib/sandbox/index.js';
import { RESOLV_CONF_ENV, RESOLV_UPSTREAM_ENV, planResolv } from '../lib/sandbox/pasta-dns.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const NAME = `bulkhead-dns-${process.pid}.test`;
const ANSWER = '10.9.8.7';

/** The host's IPv4 default gateway from /proc/net/route (pasta gives the namespace the same one), or null. */
function hostGateway4(): string | null {
  for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
    const [, destination, gateway, flags] = line.trim().split(/\s+/);
    if (destination !== '00000000' || gateway === undefined || flags === undefined || (parseInt(flags, 16) & 3) !== 3) continue;
    const n = parseInt(gateway, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
  }
  return null;
}

t.test('planResolv: only loopback nameservers pasta does not reach change, to systemd-resolved\'s upstreams', async (t) => {
  t.equal(planResolv('nameserver 10.0.0.53\nsearch lan\n', null), null, 'no loopback resolver: the host\'s file serves as is');
  t.equal(planResolv('nameserver 127.0.0.1\n', null), null, '127.0.0.1: pasta forwards its port 53, the file serves as is');
  const resolved = planResolv('search lan\nnameserver 127.0.0.53\nnameserver 9.9.9.9\noptions edns0 trust-ad\n', 'nameserver 10.1.1.1\nnameserver 127.0.0.1\nnameserver 10.1.1.2\n')!;
  t.match(resolved.content, /search lan\nnameserver 10\.1\.1\.1\nnameserver 10\.1\.1\.2\nnameserver 9\.9\.9\.9\noptions edns0 trust-ad/, 'the stub becomes its non-loopback upstreams; the rest stays');
  t.match(resolved.changes[0], /^127\.0\.0\.53 → 10\.1\.1\.1, 10\.1\.1\.2/);
  const stranded = planResolv('nameserver 127.0.1.1\n', null)!;
  t.notMatch(stranded.content, /nameserver/, 'nothing reaches 127.0.1.1: left out');
  t.same(stranded.unreachable, ['127.0.1.1'], 'and reported');
});

const probe = await probeHost();
const canPasta = probe.bwrap !== null && probe.pasta !== null && hostGateway4() !== null;

/** Answers every A query for NAME with ANSWER (and NXDOMAIN otherwise). */
async function dnsServer(address: string): Promise<Socket | null> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    let end = 12;
    while (end < msg.length && msg[end] !== 0) end += msg[end]! + 1;
    const question = msg.subarray(12, end + 5);
    const labels: string[] = [];
    for (let i = 12; i < end; i += msg[i]! + 1) labels.push(msg.subarray(i + 1, i + 1 + msg[i]!).toString('latin1'));
    const known = labels.join('.').toLowerCase() === NAME;
    const header = Buffer.from([msg[0]!, msg[1]!, 0x81, known ? 0x80 : 0x83, 0, 1, 0, known ? 1 : 0, 0, 0, 0, 0]);
    const answer = known ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...ANSWER.split('.').map(Number)]) : Buffer.alloc(0);
    socket.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
  });
  return new Promise((resolve) => {
    socket.once('error', () => resolve(null));
    socket.bind(53, address, () => resolve(socket));
  });
}

t.test('network "full": the helper resolves through the host\'s resolver on 127.0.0.53', { skip: canPasta ? false : 'needs bubblewrap, pasta and a default route' }, async (t) => {
  const stub = await dnsServer('127.0.0.53');
  const loopback = stub === null ? null : await dnsServer('127.0.0.1');
  if (stub === null || loopback === null) {
    stub?.close();
    t.plan(0, 'port 53 on 127.0.0.53 or 127.0.0.1 is taken, or needs root');
    return;
  }
  t.teardown(() => {
    stub.close();
    loopback.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-dns-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.53\noptions timeout:2 attempts:1\n');
  writeFileSync(join(dir, 'upstream.conf'), `nameserver ${hostGateway4()!}\n`);
  process.env[RESOLV_CONF_ENV] = join(dir, 'resolv.conf');
  process.env[RESOLV_UPSTREAM_ENV] = join(dir, 'upstream.conf');
  t.teardown(() => {
    delete process.env[RESOLV_CONF_ENV];
    delete process.env[RESOLV_UPSTREAM_ENV];
  });
  const { promises } = await import('node:dns');
  const onHost = new promises.Resolver();
  onHost.setServers(['127.0.0.53']);
  t.same(await onHost.resolve4(NAME), [ANSWER], 'control: the test\'s server answers on the host');
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name: 'client', entry: './sandbox/kernel-service.js', protocol: 'com.test.sandbox-kernel', sandbox: 'network-client', sandboxPaths: { koffi: join(REPO_ROOT, 'node_modules', 'koffi') } }],
  });
  t.teardown(() => kit.close());
  const dns = async (params: object) => (await kit.broker.connect('client').call('dns', { name: NAME, ...params }) as Attempt).value as { resolve4: Attempt; lookup: Attempt };
  const through = await dns({});
  t.same(through.resolve4, { ok: true, code: null, value: [ANSWER] }, 'c-ares, reading the helper\'s /etc/resolv.conf, gets the answer');
  t.same(through.lookup, { ok: true, code: null, value: ANSWER }, 'getaddrinfo (dns.lookup) too');
  const stubInside = await dns({ servers: ['127.0.0.53'] });
  t.same(stubInside.resolve4, { ok: false, code: 'ECONNREFUSED' }, 'control: 127.0.0.53 does not answer inside, so the host\'s file as is would fail');
  t.same((await dns({ servers: ['127.0.0.1'] })).resolve4, { ok: true, code: null, value: [ANSWER] }, 'control: 127.0.0.1 does (pasta forwards its port 53), which is why such a file is left alone');
  const network = kit.broker.status('client').sandbox!.rules.find((r) => r.rule === 'network');
  t.match(network?.detail, new RegExp(`DNS: its /etc/resolv.conf is rewritten .*127\\.0\\.0\\.53 → ${hostGateway4()!.replace(/\./g, '\\.')}`), 'the report says what was done');
});
