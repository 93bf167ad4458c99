/**
 * Layering of the identity layer (DESIGN.md): a helper's runtime never reaches
 * node-forge or lib/identity, and lib/identity imports nothing above it (only the
 * error family and node built-ins, plus node-forge). A static walk of the source
 * import graph.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from './helpers.js';

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/g;

/** Module specifiers imported (type-only imports excluded: they vanish at runtime) by one source file. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    if (/^\s*(?:import|export)\s+type\s/.test(m[0].trimStart())) continue;
    out.push(m[1]!);
  }
  return out;
}

/** Every module reachable from `entry` at runtime: local files (as repo-relative paths) and packages. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [resolve(REPO_ROOT, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    const key = relative(REPO_ROOT, file);
    if (seen.has(key)) continue;
    seen.add(key);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) {
        const ts = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
        if (existsSync(ts)) stack.push(ts);
      } else {
        seen.add(spec);
      }
    }
  }
  return seen;
}

t.test('lib/service.ts (the helper runtime) never reaches node-forge or lib/identity', async (t) => {
  const graph = reachable('lib/service.ts');
  t.ok(graph.size > 1, `walked ${graph.size} modules`);
  t.notOk(graph.has('node-forge'), 'no node-forge');
  t.same([...graph].filter((m) => m.startsWith('lib/identity/')), [], 'no lib/identity module');
  // Positive control: the same walk does find node-forge behind lib/identity.
  const identity = reachable('lib/identity/index.ts');
  t.ok(identity.has('node-forge'), 'the walk sees node-forge from lib/identity/index.ts');
  t.ok(identity.has('lib/identity/certificate.ts'), 'and follows relative imports');
});

t.test('lib/identity imports only errors, itself, node built-ins and node-forge', async (t) => {
  const dir = join(REPO_ROOT, 'lib', 'identity');
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    for (const spec of importsOf(join(dir, name))) {
      const ok = spec === '../errors.js' || /^\.\/[a-z-]+\.js$/.test(spec) || spec.startsWith('node:') || spec === 'node-forge';
      t.ok(ok, `${name} imports ${spec}`);
    }
  }
});

t.test('koffi (the daemon\'s SO_PEERCRED FFI) stays out of the helper runtime and of an app that imports bulkhead', async (t) => {
  const graph = reachable('lib/service.ts');
  t.same([...graph].filter((m) => m.startsWith('lib/daemon/')), [], 'the helper runtime reaches no lib/daemon module');
  const runtime = readFileSync(join(REPO_ROOT, 'dist/lib/service.runtime.cjs'), 'utf8');
  t.ok(runtime.includes('BULKHEAD_PROTOCOL_FILE'), 'positive control: the file read is the helper runtime');
  t.notOk(runtime.includes('koffi'), 'the helper runtime has no koffi in it');
  // At run time: importing bulkhead (embedded broker, connectTo) loads no koffi; starting a daemon does.
  const { execFileSync } = await import('node:child_process');
  const probe = (code: string) => execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const loaded = "import { createRequire } from 'node:module'; const cache = createRequire(import.meta.url).cache; const has = () => Object.keys(cache).some((k) => k.includes('/koffi/'));";
  t.equal(probe(`${loaded} await import('bulkhead'); console.log(has());`), 'false', 'import("bulkhead") loads no koffi');
  t.equal(probe(`${loaded} const m = await import('./dist/lib/daemon/peer-credentials.js'); m.loadPeerCredentials(); console.log(has());`), 'true', 'positive control: the daemon\'s loader does load it, and the probe sees it');
});

t.test('a daemon client (connectTo, the CLI\'s control commands) signs its proof without loading node-forge', async (t) => {
  const client = reachable('lib/daemon/remote-broker.ts');
  t.ok(client.has('lib/identity/proof-sign.ts'), 'the client reaches the signing half of the proof');
  t.notOk(client.has('node-forge'), 'and no node-forge');
  t.notOk(reachable('lib/identity/files.ts').has('node-forge'), 'nor does reading an identity from its files');
  // At run time: read an identity, sign a proof as a client does; then the positive control, the daemon's half.
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-forge-probe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { CertificateAuthority, writeIdentity } = await import('../lib/identity/index.js');
  const ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  writeIdentity(join(dir, 'ids'), ca.issue('app'));
  const probe = (code: string) => execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const loaded = "import { createRequire } from 'node:module'; const cache = createRequire(import.meta.url).cache; const has = () => Object.keys(cache).some((k) => k.includes('/node-forge/'));";
  const sign = `const { readIdentity } = await import('./dist/lib/identity/files.js'); await import('./dist/lib/daemon/remote-broker.js');
    const { proofPayload, signProof } = await import('./dist/lib/identity/proof-sign.js');
    const id = readIdentity(${JSON.stringify(join(dir, 'ids'))}, 'app');
    const signature = signProof(id.keyPem, proofPayload(Buffer.alloc(32, 7), { socketPath: '/s', daemonId: 'd', clientName: 'app' }));`;
  t.equal(probe(`${loaded} ${sign} console.log(signature.length === 256 && !has());`), 'true', 'a 2048-bit signature made, no node-forge loaded');
  t.equal(probe(`${loaded} ${sign} const { verifyProof } = await import('./dist/lib/identity/proof.js');
    console.log(verifyProof(id.certPem, proofPayload(Buffer.alloc(32, 7), { socketPath: '/s', daemonId: 'd', clientName: 'app' }), signature) && has());`), 'true', 'positive control: the daemon\'s half verifies that signature, and does load node-forge');
});
