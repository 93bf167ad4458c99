/**
 * Broker memory: RSS and V8 heap of a fresh process after importing
 * bulkhead, after registering 100 idle services (not launched) and after
 * opening 1,000 connections to them (embedded broker). Each measurement runs
 * in its own `node --expose-gc` process, a few times; medians.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONFIG } from '../common/config.js';
import { fmt, heading, machine, printTable, writeResult, type ScenarioResult } from '../common/report.js';
import { median } from '../common/stats.js';

const NAME = 'memory';
const CHILD = fileURLToPath(new URL('./memory-process.js', import.meta.url));
type Snap = { rss: number; heapUsed: number; external: number };
type Run = { empty: Snap; imported: Snap; first: Snap; registered: Snap; connected: Snap };

/** Runs the scenario. */
export async function runMemory(): Promise<ScenarioResult> {
  const start = machine();
  const n = CONFIG.memoryServices;
  const m = CONFIG.memoryConnections;
  heading(`broker memory: ${n} idle services registered, ${m} connections (3 fresh processes, medians)`);
  const runs: Run[] = [];
  for (let i = 0; i < 3; i++) {
    const out = execFileSync(process.execPath, ['--expose-gc', CHILD, String(n), String(m)], { encoding: 'utf8' });
    runs.push(JSON.parse(out.trim().split('\n').pop()!) as Run);
  }
  const mib = (b: number) => b / 2 ** 20;
  const med = (f: (r: Run) => number) => median(runs.map(f));
  const steps = ['empty', 'imported', 'first', 'registered', 'connected'] as const;
  const table = steps.map((s) => ({ step: s, rssMiB: med((r) => mib(r[s].rss)), heapMiB: med((r) => mib(r[s].heapUsed)), externalMiB: med((r) => mib(r[s].external)) }));
  printTable(['step', 'RSS MiB', 'heap used MiB', 'external MiB'], table.map((t) => [t.step, fmt(t.rssMiB), fmt(t.heapMiB, 2), fmt(t.externalMiB, 2)]));
  // Per service: what each registration after the first adds (the first also compiles the protocol, once per protocol).
  const perService = { rssKiB: med((r) => (r.registered.rss - r.first.rss) / 1024 / n), heapKiB: med((r) => (r.registered.heapUsed - r.first.heapUsed) / 1024 / n) };
  const firstService = { heapKiB: med((r) => (r.first.heapUsed - r.imported.heapUsed) / 1024) };
  const perConnection = { rssKiB: med((r) => (r.connected.rss - r.registered.rss) / 1024 / m), heapKiB: med((r) => (r.connected.heapUsed - r.registered.heapUsed) / 1024 / m) };
  console.log(`  per idle service: ${fmt(perService.heapKiB)} KiB heap (${fmt(perService.rssKiB)} KiB RSS); the first registration ${fmt(firstService.heapKiB)} KiB (loads and compiles the protocol, and the modules registration uses); per connection: ${fmt(perConnection.heapKiB, 2)} KiB heap`);
  const broker = { rssMiB: table[4]!.rssMiB - table[0]!.rssMiB, heapMiB: table[4]!.heapMiB - table[0]!.heapMiB };
  writeResult(NAME, start, { services: n, connections: m, steps: table, perService, firstService, perConnection, runs });
  return {
    name: NAME,
    data: { steps: table },
    targets: [{
      scenario: NAME,
      target: 'broker heap ≤ 10 KiB per idle registered service',
      measured: `${fmt(perService.heapKiB)} KiB heap per service (${fmt(perService.rssKiB)} KiB RSS), ${n} services registered after the first, not launched; the first registration ${fmt(firstService.heapKiB)} KiB (protocol compiled, modules loaded: once)`,
      met: perService.heapKiB <= 10,
    }, {
      scenario: NAME,
      target: `broker memory, ${n} idle services + ${m} connections (no target)`,
      measured: `+${fmt(broker.rssMiB)} MiB RSS, +${fmt(broker.heapMiB)} MiB heap over an empty node (${fmt(table[4]!.rssMiB)} MiB RSS in all); ${fmt(perService.heapKiB)} KiB heap per service, ${fmt(perConnection.heapKiB, 2)} KiB per connection`,
      met: null,
    }],
  };
}
