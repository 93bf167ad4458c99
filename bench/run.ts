/**
 * `npm run bench`: every scenario (or those named on the command line), then
 * one table of the targets and where we stand. Results go to
 * bench/results/<scenario>.json and bench/results/summary.json.
 *
 *   npm run bench                       # full run on this node (< 5 min on 2 cores)
 *   npm run bench -- --node 24          # on Node 24 (CI's binary, fetched once); also 26, a path, or 20,24,26
 *   BENCH_NODE=26 npm run bench         # the same, from the environment
 *   BENCH_QUICK=1 npm run bench         # ~1-minute smoke run
 *   node dist/bench/run.js payloads     # one scenario (after npm run build)
 * @module
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseNodeOption, resolveNode } from './common/node-line.js';
import { CONFIG } from './common/config.js';
import { RESULTS_DIR, machine, printTable, type ScenarioResult, type TargetRow } from './common/report.js';
import { runConnects } from './scenarios/connects.js';
import { runDaemon } from './scenarios/daemon.js';
import { runDaemonAbuse } from './scenarios/daemon-abuse.js';
import { runEvents } from './scenarios/events.js';
import { runLaunch } from './scenarios/launch.js';
import { runMemory } from './scenarios/memory.js';
import { runPayloads } from './scenarios/payloads.js';
import { runSmallCalls } from './scenarios/small-calls.js';
import { runStreams } from './scenarios/streams.js';

const SCENARIOS: Record<string, () => Promise<ScenarioResult>> = {
  'small-calls': runSmallCalls,
  payloads: runPayloads,
  events: runEvents,
  launch: runLaunch,
  daemon: runDaemon,
  'daemon-abuse': runDaemonAbuse,
  connects: runConnects,
  memory: runMemory,
  streams: runStreams,
};

const { nodes, rest: wanted } = parseNodeOption(process.argv.slice(2));
const binaries = nodes.map(resolveNode);
if (binaries.some((bin) => bin !== process.execPath)) {
  // Run the whole bench again on each asked-for node: bulkhead, its helpers and every baseline
  // then use that binary (they all spawn process.execPath).
  let status = 0;
  for (const bin of binaries) {
    const run = spawnSync(bin, [fileURLToPath(import.meta.url), ...wanted], { stdio: 'inherit', env: { ...process.env, BENCH_NODE: '' } });
    if (run.status !== 0) status = run.status ?? 1;
  }
  process.exit(status);
}
for (const name of wanted) {
  if (!(name in SCENARIOS)) {
    console.error(`unknown scenario "${name}"; known: ${Object.keys(SCENARIOS).join(', ')}`);
    process.exit(2);
  }
}
const start = machine();
const began = performance.now();
console.log(`bulkhead bench${CONFIG.quick ? ' (BENCH_QUICK)' : ''}: ${start.date}, node ${start.node}, ${start.cores} × ${start.model}, load ${start.loadAtStart.join(' ')}, cbor-x native ${start.cborNativeAcceleration ? 'on' : 'OFF'}`);
const targets: TargetRow[] = [];
const failures: string[] = [];
for (const [name, run] of Object.entries(SCENARIOS)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const t0 = performance.now();
  try {
    const result = await run();
    targets.push(...result.targets);
    console.log(`  (${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  } catch (err) {
    failures.push(name);
    console.error(`scenario ${name} failed: ${(err as Error).stack ?? String(err)}`);
  }
}
const seconds = (performance.now() - began) / 1000;
console.log(`\n== TARGET TABLE, issue 19 (${start.date.slice(0, 10)}, ${start.cores} × ${start.model}, node ${start.node}, load at start ${start.loadAtStart.join(' ')}, ${seconds.toFixed(0)} s)`);
printTable(['scenario', 'target', 'status', 'measured'], targets.map((t) => [t.scenario, t.target, t.met === null ? 'info' : t.met ? 'met' : 'NOT MET', t.measured]), true);
const judged = targets.filter((t) => t.met !== null);
console.log(`  ${judged.filter((t) => t.met === true).length} of ${judged.length} targets met on node ${start.node}; load at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
mkdirSync(RESULTS_DIR, { recursive: true });
const summary = `${JSON.stringify({ ...start, seconds: Math.round(seconds), scenarios: wanted.length > 0 ? wanted : Object.keys(SCENARIOS), config: CONFIG, failures, targets }, null, 2)}\n`;
writeFileSync(`${RESULTS_DIR}summary.json`, summary);
// One summary per Node line as well, so runs on 20, 24 and 26 sit side by side.
writeFileSync(`${RESULTS_DIR}summary-node${process.versions.node.split('.')[0]}.json`, summary);
if (failures.length > 0) {
  console.error(`failed scenarios: ${failures.join(', ')}`);
  process.exitCode = 1;
}
