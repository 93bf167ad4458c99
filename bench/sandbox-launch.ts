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
import { HelperCgroup } from '../lib/sandbox/cgroup.js';
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
    variants.push(fixed('bwrap (ro binds, net+pid+ipc+uts ns)', [probe.bwrap, '--die-with-parent', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', ...(probe.isRoot ? [] : ['--unshare-user']), ...runtime, '--proc', '/proc', '--dev', '/dev', ...(NODE.startsWith('/usr/') ? [] : ['--ro-bind', NODE, NODE]), '--ro-bind', HELPER_DIR, HELPER_DIR, '--', NODE, HELPER]));
  }
  if (probe.setpriv !== null) variants.push(fixed(`setpriv (${probe.isRoot ? 'uid drop, caps, nnp' : 'nnp'})`, [probe.setpriv, ...(probe.isRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'] : []), '--no-new-privs', '--', NODE, HELPER]));
  // 512 MiB plus what this node line reserves per isolate (Node 24+: a bare 512 MiB kills node at start).
  const dataBytes = (512 + probe.node.isolateReserveMiB) * 1024 * 1024;
  if (probe.prlimit !== null) variants.push(fixed('prlimit (data, nofile, core)', [probe.prlimit, `--data=${dataBytes}:${dataBytes}`, '--nofile=64:64', '--core=0:0', '--', NODE, HELPER]));
  // The cgroup layer alone: its directories and limits made, the helper joined by `sh` before node runs.
  const cgroupCosts = { create: [] as number[], remove: [] as number[] };
  if (probe.cgroup !== null && probe.sh !== null) {
    const support = probe.cgroup;
    variants.push({
      name: `sh + cgroup v${support.version} join (memory + pids limits; cpu cgroup without quota)`,
      make: async () => {
        const cgroup = HelperCgroup.plan(support, 'bench', { memoryMiB: 512, processes: 64 });
        const t0 = performance.now();
        cgroup.create();
        cgroupCosts.create.push(performance.now() - t0);
        const join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
        return {
          command: probe.sh!, args: ['-c', join, 'join', String(cgroup.procsFiles.length), ...cgroup.procsFiles, NODE, HELPER], env: baseEnv, cwd: HELPER_DIR,
          cleanup: async () => {
            const t1 = performance.now();
            await cgroup.remove();
            cgroupCosts.remove.push(performance.now() - t1);
          },
        };
      },
    });
    const document = { ...(JSON.parse(readFileSync(`${ROOT}sandbox-profiles/pure-compute.json`, 'utf8')) as object), enforcement: 'best-effort' };
    variants.push({
      name: 'profile pure-compute without its cgroup (rlimit fallback)',
      make: async () => {
        setHostProbeOverride((p) => ({ ...p, cgroup: null }));
        try {
          return await planLaunch({ service: 'bench', entry: HELPER, serviceDir: HELPER_DIR, implicitReads: [], nodePath: NODE, nodeArgs: [], env: {}, profile: { name: 'pure-compute', document }, paths: { data: HELPER_DIR } });
        } finally {
          setHostProbeOverride(undefined);
        }
      },
    });
  }
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
  // The exec guard: a node pre-exec stage (lib/sandbox/exec-guard*.ts) for every profile with children off.
  without('pure-compute', 'without the exec guard', (p) => ({ ...p, kernel: { ...p.kernel, execGuardProblem: 'bench' } }));
  without('pure-compute', 'with the exec guard\'s node stage', (p) => ({ ...p, kernel: { ...p.kernel, execGuardNative: null } }));
  without('network-client', 'without the exec guard', (p) => ({ ...p, kernel: { ...p.kernel, execGuardProblem: 'bench' } }));
  // network "full": pasta (its own netns) is the default; without it, the Landlock scope pre-exec step; without both, the host's netns.
  without('network-client', 'without pasta (Landlock scope pre-exec step instead)', (p) => ({ ...p, pasta: null }));
  without('network-client', 'without pasta and Landlock (host netns)', (p) => ({ ...p, pasta: null, kernel: { ...p.kernel, landlockAbi: 0 } }));
  without('network-client', 'without pasta, seccomp and Landlock', (p) => ({ ...p, pasta: null, kernel: { ...p.kernel, landlockAbi: 0, seccompProblem: 'bench' } }));

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
  if (cgroupCosts.create.length > 0) {
    console.log(`cgroup directories + limits, made in the broker before spawn: median ${median(cgroupCosts.create).toFixed(2)} ms; killed and removed after exit: median ${median(cgroupCosts.remove).toFixed(2)} ms`);
  }
}

await main();
