/**
 * A small app laid out as the README shows it, for the read-set escape tests:
 * a hostile helper beside `main.js`, with the secrets an app really has next to
 * it (`.env`, `config/credentials.json`, another service's code, a private
 * package in `node_modules`) and a world-connectable Unix socket `run/app.sock`
 * served by the test. How bulkhead got into `node_modules` is the caller's part.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { probeHost } from '../lib/sandbox/index.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';

/** Files the hostile helper must not read, by what they stand for. */
export interface AppSecrets {
  env: string;
  credentials: string;
  main: string;
  otherService: string;
  privatePackage: string;
  privatePackageJson: string;
  unimportedSibling: string;
}

/** The app on disk. */
export interface ReadSetApp {
  dir: string;
  secrets: AppSecrets;
  /** `run/app.sock`, mode 0666, outside every grant. */
  socket: string;
  /** A directory the fs-reader profile is granted (`sandboxPaths.data`), with `data.txt` and a socket `inner.sock`. */
  data: string;
  /** An abstract Unix socket (no file: it belongs to the test's network namespace). */
  abstractSocket: string;
  /** What the sockets answer on connect. */
  greeting: string;
  close(): Promise<void>;
}

const GREETING = 'hello from the app\n';

/** Writes a file, creating its directory (0755: a helper dropped to another uid may traverse it). */
function put(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, text, { mode: 0o644 });
}

async function serveSocket(path: string): Promise<Server> {
  const server = createServer((socket) => socket.end(GREETING));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  // World-connectable: only the sandbox can stand in the way. (An abstract socket has no file or mode.)
  if (!path.startsWith('\0')) chmodSync(path, 0o666);
  return server;
}

/**
 * Lays the app out in `dir` (which exists, 0755, and already holds `node_modules/bulkhead`
 * when the caller installed it).
 */
export async function layOutApp(dir: string): Promise<ReadSetApp> {
  chmodSync(dir, 0o755);
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  // The caller may have written its own package.json (to install bulkhead); keep its fields.
  let pkg: Record<string, unknown> = {};
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // none yet
  }
  put(join(dir, 'package.json'), json({ name: 'readset-app', version: '1.0.0', private: true, ...pkg, type: 'module' }));
  put(join(dir, 'main.js'), '// the app itself\nexport const APP_SECRET = "main script";\n');
  put(join(dir, '.env'), 'DB_PASSWORD=hunter2\n');
  put(join(dir, 'config', 'credentials.json'), json({ apiKey: 'sk-not-for-helpers' }));
  put(join(dir, 'other-service.js'), '// another service\'s code\nexport const OTHER = "other service";\n');
  copyFileSync(join(FIXTURES, 'read-set', 'hostile-helper.js'), join(dir, 'hostile.js'));
  chmodSync(join(dir, 'hostile.js'), 0o644);
  put(join(dir, 'lib', 'util.js'), 'export const localValue = "from lib/util.js";\n');
  put(join(dir, 'lib', 'unimported.js'), 'export const notImported = true;\n');
  put(join(dir, 'node_modules', 'public-pkg', 'package.json'), json({ name: 'public-pkg', version: '1.0.0', type: 'module', exports: './index.js' }));
  put(join(dir, 'node_modules', 'public-pkg', 'index.js'), 'export const packageValue = "from public-pkg";\n');
  put(join(dir, 'node_modules', 'private-pkg', 'package.json'), json({ name: 'private-pkg', version: '1.0.0', type: 'module', exports: './index.js' }));
  put(join(dir, 'node_modules', 'private-pkg', 'index.js'), 'export const licenseKey = "private";\n');
  mkdirSync(join(dir, 'protocols'), { recursive: true, mode: 0o755 });
  cpSync(join(FIXTURES, 'protocols', 'com.test.read-set.json'), join(dir, 'protocols', 'com.test.read-set.json'));
  put(join(dir, 'data', 'data.txt'), 'granted data\n');
  mkdirSync(join(dir, 'run'), { recursive: true, mode: 0o755 });
  const socket = join(dir, 'run', 'app.sock');
  const abstractSocket = `\0bulkhead-read-set-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const servers = [await serveSocket(socket), await serveSocket(join(dir, 'data', 'inner.sock')), await serveSocket(abstractSocket)];
  return {
    dir,
    secrets: {
      env: join(dir, '.env'),
      credentials: join(dir, 'config', 'credentials.json'),
      main: join(dir, 'main.js'),
      otherService: join(dir, 'other-service.js'),
      privatePackage: join(dir, 'node_modules', 'private-pkg', 'index.js'),
      privatePackageJson: join(dir, 'node_modules', 'private-pkg', 'package.json'),
      unimportedSibling: join(dir, 'lib', 'unimported.js'),
    },
    socket,
    abstractSocket,
    data: join(dir, 'data'),
    greeting: GREETING,
    close: async () => {
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}

function run(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/**
 * Packs the built bulkhead (`npm pack`) and installs the tarball into `dir` the way an app
 * would, offline: a lockfile made from this checkout's pins its runtime dependencies to the
 * tarballs `npm ci` already put in the npm cache, so no registry is asked.
 * @throws Error with npm's output when packing or installing fails
 */
export async function installPackedBulkhead(dir: string): Promise<void> {
  const packed = await run('npm', ['pack', '--silent', '--pack-destination', dir], REPO_ROOT);
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const tarball = `file:${packed.stdout.trim().split('\n').pop()!}`;
  const repoLock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const repoPkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const packages: Record<string, Record<string, unknown>> = {
    '': { name: 'readset-app', version: '1.0.0', dependencies: { bulkhead: tarball } },
    'node_modules/bulkhead': { version: repoPkg['version'], resolved: tarball, license: repoPkg['license'], dependencies: repoPkg['dependencies'], bin: repoPkg['bin'], engines: repoPkg['engines'] },
  };
  for (const [path, entry] of Object.entries(repoLock.packages)) {
    if (!path.startsWith('node_modules/') || entry['dev'] === true) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    // This checkout's lockfile omits registry URLs; npm needs them to use its cache without asking the registry.
    const resolved = entry['resolved'] ?? `https://registry.npmjs.org/${name}/-/${name.split('/').pop()!}-${String(entry['version'])}.tgz`;
    packages[path] = { ...entry, resolved };
  }
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'readset-app', version: '1.0.0', private: true, dependencies: { bulkhead: tarball }, overrides: repoPkg['overrides'] }, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify({ name: 'readset-app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
  const installed = await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  if (installed.code !== 0) throw new Error(`npm ci --offline of the packed bulkhead failed (is the npm cache populated by \`npm ci\`?): ${installed.stderr}`);
}

/** One attempt's outcome, as the hostile helper reports it. */
export interface Attempt { ok: boolean; code: string | null; value?: unknown }

/** The shipped profiles (sandbox-profiles/*.json) and the network rule each has. */
export const SHIPPED_PROFILES = { 'pure-compute': 'none', 'no-network': 'none', 'network-client': 'full', 'fs-reader': 'none' } as const;
export type ShippedProfile = keyof typeof SHIPPED_PROFILES;

/** The manifest of the hostile helper under one profile (fs-reader is granted the app's `data/`). */
export function hostileManifest(profile: string, app: ReadSetApp, extra: Record<string, unknown> = {}) {
  return { name: profile, entry: './hostile.js', protocol: 'com.test.read-set', sandbox: profile, launch: { throttleMs: 0 }, ...(profile === 'fs-reader' ? { sandboxPaths: { data: app.data } } : {}), ...extra };
}

/** What one app layout adds to the attempts every layout makes. */
export interface AttemptOptions {
  /** Files of bulkhead's dev dependencies or the app's other packages this layout has, which must stay unreadable. */
  moreDenied: string[];
  /** The status report of the service (for what it was granted). */
  grants: { code: string[]; runtime: string[]; read: string[] };
}

/**
 * Every escape the hostile helper tries under one shipped profile, with exact errors, and the
 * positive controls: it ran, its own imports work, it reads its own code and what the profile grants.
 */
export async function attemptEscapes(t: Test, call: (method: string, params?: object) => Promise<unknown>, app: ReadSetApp, profile: ShippedProfile, options: AttemptOptions): Promise<void> {
  const attempt = (method: string, params: object) => call(method, params) as Promise<Attempt>;
  const own = (await call('ownCode')) as { local: string; pkg: string; pid: number };
  t.same(own, { local: 'from lib/util.js', pkg: 'from public-pkg', pid: own.pid }, 'the helper ran, and its static imports (a local module, a package) loaded');
  t.equal(own.pid, 2, 'inside its own pid namespace (bubblewrap is pid 1)');

  for (const [what, path] of Object.entries(app.secrets)) {
    t.same(await attempt('tryRead', { path }), { ok: false, code: 'ERR_ACCESS_DENIED' }, `read ${what} (${path.slice(app.dir.length + 1)})`);
  }
  for (const path of options.moreDenied) t.same(await attempt('tryRead', { path }), { ok: false, code: 'ERR_ACCESS_DENIED' }, `read ${path}`);
  // Positive: its own code and its package's code are readable.
  t.same(await attempt('tryRead', { path: join(app.dir, 'lib', 'util.js') }), { ok: true, code: null, value: 'export const localValue = "from lib/util.js";\n' }, 'reads a module it imports');
  t.same(await attempt('tryRead', { path: join(app.dir, 'node_modules', 'public-pkg', 'index.js') }), { ok: true, code: null, value: 'export const packageValue = "from public-pkg";\n' }, 'reads a package it imports');

  // A Unix socket outside every grant: absent from its mount view. (Node ≥ 25 runs helpers with --allow-net,
  // which fd 3 needs, so its permission model never stands in front of the kernel here.)
  t.same(await attempt('tryConnectUnix', { path: app.socket }), { ok: false, code: 'ENOENT' }, 'connect to run/app.sock (0666)');

  // An abstract socket has no path: the network namespace decides. Under "full" the helper has one of its own
  // where pasta is installed; without pasta it shares the host's, and Landlock's abstract-socket scope refuses
  // the connect (#13; the positive controls are in sandbox-netns.test.ts and sandbox-kernel.test.ts).
  const network = SHIPPED_PROFILES[profile];
  const landlockOnly = network === 'full' && (await probeHost()).pasta === null;
  t.same(await attempt('tryConnectUnix', { path: app.abstractSocket }), { ok: false, code: landlockOnly ? 'EPERM' : 'ECONNREFUSED' }, `abstract Unix socket: ${landlockOnly ? 'refused by Landlock scope under network "full"' : 'another network namespace'}`);

  // import() outside the graph: the file does not exist in its view.
  t.same(await attempt('tryImport', { specifier: app.secrets.unimportedSibling }), { ok: false, code: 'ERR_MODULE_NOT_FOUND' }, 'import() of a sibling outside its graph');
  t.same(await attempt('tryImport', { specifier: 'private-pkg' }), { ok: false, code: 'ERR_MODULE_NOT_FOUND' }, 'import() of a package it does not import');
  t.same(await attempt('tryImport', { specifier: join(REPO_ROOT, 'node_modules', 'typescript', 'lib', 'typescript.js') }), { ok: false, code: 'ERR_MODULE_NOT_FOUND' }, 'import() of bulkhead\'s dev dependency typescript');
  t.same(await attempt('tryImport', { specifier: join(app.dir, 'lib', 'util.js') }), { ok: true, code: null, value: 'localValue' }, 'import() inside its graph works');
  t.same(await attempt('tryImport', { specifier: 'public-pkg' }), { ok: true, code: null, value: 'packageValue' }, 'import() of its package works');

  // What it was granted: nothing that holds a secret.
  const granted = [...options.grants.code, ...options.grants.runtime, ...options.grants.read];
  for (const secret of [...Object.values(app.secrets), ...options.moreDenied, app.socket]) {
    t.same(granted.filter((path) => secret === path || secret.startsWith(path.endsWith('/') ? path : `${path}/`)), [], `no grant covers ${secret.slice(app.dir.length + 1) || secret}`);
  }
  t.ok(options.grants.code.includes(join(app.dir, 'hostile.js')) && options.grants.code.includes(join(app.dir, 'lib', 'util.js')) && options.grants.code.includes(join(app.dir, 'node_modules', 'public-pkg')), 'status lists its module graph');

  if (profile === 'no-network') {
    // Children run outside Node's permission model: only the mount view stands between them and the app.
    t.same(await attempt('tryChildRead', { path: app.secrets.env }), { ok: true, code: null, value: { exit: 1, stderr: `/bin/cat: ${app.secrets.env}: No such file or directory\n` } }, 'a child process cannot see .env');
    t.same(await attempt('tryChildRead', { path: join(app.dir, 'lib', 'util.js') }), { ok: true, code: null, value: { exit: 0, stderr: '' } }, 'positive: the child reads the helper\'s own module');
  }
  if (profile === 'fs-reader') {
    t.same(await attempt('tryRead', { path: join(app.data, 'data.txt') }), { ok: true, code: null, value: 'granted data\n' }, 'reads its granted dir');
    // Documented: a read grant does not stop connect() to a socket inside it (a read-only mount does not).
    t.same(await attempt('tryConnectUnix', { path: join(app.data, 'inner.sock') }), { ok: true, code: null, value: app.greeting }, 'socket inside the granted read dir: reachable (docs/sandbox.md says so)');
  }
}
