/**
 * Launch-time cost of each sandbox layer: spawn → first byte on fd 3 from a
 * tiny helper (test/fixtures/sandbox/first-byte.js), median of N launches per
 * variant, variants interleaved round by round so drift hits all alike.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/sandbox-launch.js [launches=15] [variant-regex]
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { planLaunch, probeHost, setHostProbeOverride, type HostProbeOverride } from '../lib/sandbox/index.js';
import { readFileSync } from 'node:fs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HELPER = `${ROOT}test/fixtures/sandbox/first-byte.js`;
const HELPER_DIR = dirname(HELPER);
const NODE = process.execPath;
const launches = Number(process.argv[2] ?? 15);

interface Launch { command: string; args: string[]; env: Record<string, string>; cwd: string; cleanup?: () => Promise<void>; inheritFds?: number[] }
interface Variant { name: string; make(): Promise<Launch> }

const baseEnv = { PATH: '/usr/bin:/bin' };
const fixed = (name: string, argv: string[]): Variant => ({ name, make: async () => ({ command: argv[0]!, args: argv.slice(1), env: baseEnv, cwd: HELPER_DIR }) });

function once({ command, args, env, cwd, inheritFds = [] }: Launch): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...inheritFds] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
    const fd3 = child.stdio[3] as import("node:net").Socket;
    let elapsed: number | undefined;
    fd3.once('data', () => {
      elapsed = performance.now() - start;
      fd3.end();
    });
    fd3.on('error', () => {});
    child.once('exit', (code) => (elapsed !== undefined ? resolve(elapsed) : reject(new Error(`${command} exited ${code} before the first byte: ${stderr.slice(0, 500)}`))));
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const probe = await probeHost(NODE);
  const runtime = probe.runtimeRoots.flatMap((r) => (r.symlink !== null ? ['--symlink', r.symlink, r.path] : ['--ro-bind', r.path, r.path]));
  const variants: Variant[] = [
    fixed('bare node', [NODE, HELPER]),
    fixed(`node ${probe.node.flag ?? '(no permission model)'} + --allow-fs-read`, [NODE, ...(probe.node.flag !== null ? [probe.node.flag, '--disable-warning=ExperimentalWarning', `--allow-fs-read=${HELPER_DIR}`] : []), HELPER]),
  ];
  if (probe.unshare !== null) variants.push(fixed('unshare -n', [probe.unshare, ...(probe.isRoot ? ['--net'] : ['--user', '--map-current-user', '--net']), '--', NODE, HELPER]));
  if (probe.bwrap !== null) {
    variants.push(fixed('bwrap (ro binds, net+pid+ipc+uts ns)', [probe.bwrap, '--die-with-parent', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', ...(probe.isRoot ? [] : ['--unshare-user']), ...runtime, '--proc', '/proc', '--dev', '/dev', '--ro-bind', HELPER_DIR, HELPER_DIR, '--', NODE, HELPER]));
  }
  if (probe.setpriv !== null) variants.push(fixed(`setpriv (${probe.isRoot ? 'uid drop, caps, nnp' : 'nnp'})`, [probe.setpriv, ...(probe.isRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'] : []), '--no-new-privs', '--', NODE, HELPER]));
  if (probe.prlimit !== null) variants.push(fixed('prlimit (data, nofile, core)', [probe.prlimit, '--data=536870912:536870912', '--nofile=64:64', '--core=0:0', '--', NODE, HELPER]));
  for (const name of ['pure-compute', 'no-network', 'network-client', 'fs-reader']) {
    const document = JSON.parse(readFileSync(`${ROOT}sandbox-profiles/${name}.json`, 'utf8')) as unknown;
    variants.push({
      name: `profile ${name} (all layers)`,
      make: async () => planLaunch({ service: 'bench', entry: HELPER, serviceDir: HELPER_DIR, implicitReads: [], nodePath: NODE, nodeArgs: [], env: {}, profile: { name, document }, paths: { data: HELPER_DIR } }),
    });
  }
  // The kernel layers (#13), each measured by switching it off on the same profile (best-effort, so the plan still launches).
  const without = (name: string, label: string, override: HostProbeOverride): void => {
    const document = { ...(JSON.parse(readFileSync(`${ROOT}sandbox-profiles/${name}.json`, 'utf8')) as object), enforcement: 'best-effort' };
    variants.push({
      name: `profile ${name} ${label}`,
      make: async () => {
        setHostProbeOverride(override);
        try {
          return await planLaunch({ service: 'bench', entry: HELPER, serviceDir: HELPER_DIR, implicitReads: [], nodePath: NODE, nodeArgs: [], env: {}, profile: { name, document }, paths: { data: HELPER_DIR } });
        } finally {
          setHostProbeOverride(undefined);
        }
      },
    });
  };
  without('pure-compute', 'without seccomp', (p) => ({ ...p, kernel: { ...p.kernel, seccompProblem: 'bench' } }));
  without('network-client', 'without Landlock (pre-exec step)', (p) => ({ ...p, kernel: { ...p.kernel, landlockAbi: 0 } }));
  without('network-client', 'without seccomp and Landlock', (p) => ({ ...p, kernel: { ...p.kernel, landlockAbi: 0, seccompProblem: 'bench' } }));

  const only = process.argv[3] === undefined ? undefined : new RegExp(process.argv[3]);
  if (only !== undefined) variants.splice(0, variants.length, ...variants.filter((v) => v.name === 'bare node' || only.test(v.name)));
  const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (const v of variants) { const p = await v.make(); await once(p); await p.cleanup?.(); } // warm-up
  for (let round = 0; round < launches; round++) {
    for (const v of variants) {
      const p = await v.make();
      times.get(v.name)!.push(await once(p));
      await p.cleanup?.();
    }
  }
  const bare = median(times.get('bare node')!);
  console.log(`spawn → first byte on fd 3, median of ${launches} launches (node ${process.version}, ${probe.isRoot ? 'root' : 'not root'})`);
  console.log('| variant | median ms | min ms | vs bare node |');
  console.log('| --- | --- | --- | --- |');
  for (const v of variants) {
    const xs = times.get(v.name)!;
    const m = median(xs);
    console.log(`| ${v.name} | ${m.toFixed(1)} | ${Math.min(...xs).toFixed(1)} | ${m - bare >= 0 ? '+' : ''}${(m - bare).toFixed(1)} ms (${(m / bare).toFixed(2)}×) |`);
  }
}

await main();
