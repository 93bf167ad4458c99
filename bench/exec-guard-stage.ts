/**
 * What the exec guard's stage costs by itself (lib/sandbox/exec-guard*.ts):
 * wall time and CPU time (user + system, from this process's reaped-children
 * counters, 10 ms ticks: read the mean) of the native stage and the node
 * stage, each exec'ing /bin/true, against /bin/true and a bare node start.
 * Variants interleaved round by round.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/exec-guard-stage.js [runs=20]
 * @module
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execGuardProgram, nativeExecGuard } from '../lib/sandbox/exec-guard.js';

const runs = Number(process.argv[2] ?? 20);
const STAGE = fileURLToPath(new URL('../lib/sandbox/landlock-exec.js', import.meta.url));

function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const program = execGuardProgram('error');
const native = await nativeExecGuard();
const variants: Record<string, string[]> = {
  '/bin/true': ['/bin/true'],
  'bare node -e 0': [process.execPath, '-e', '0'],
  'node stage, no guard → /bin/true': [process.execPath, STAGE, '{}', '--', '/bin/true'],
  'node stage with the guard → /bin/true': [process.execPath, STAGE, JSON.stringify({ execGuard: program.toString('base64') }), '--', '/bin/true'],
  ...(native !== null ? { 'native stage with the guard → /bin/true': [native, program.toString('hex'), '--', '/bin/true'] } : {}),
};
const wall = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
for (let round = 0; round < runs; round++) {
  for (const [name, argv] of Object.entries(variants)) {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${name} exited ${String(r.status)}`);
    wall.set(name, [...(wall.get(name) ?? []), performance.now() - t0]);
    cpu.set(name, [...(cpu.get(name) ?? []), childrenCpuMs() - cpu0]);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`exec guard stage, ${runs} runs each (node ${process.version})`);
console.log('| variant | wall median ms | CPU mean ms |');
console.log('| --- | --- | --- |');
for (const name of Object.keys(variants)) console.log(`| ${name} | ${median(wall.get(name)!).toFixed(1)} | ${mean(cpu.get(name)!).toFixed(0)} |`);
