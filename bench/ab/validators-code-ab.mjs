// The staleness checks of bulkhead's validators code (lib/protocol/validators-code-key.ts) in fresh processes, two
// builds side by side, alternating: CPU (user + system) of the loader's check of a packaged module (matches: a client
// or the CLI), of the broker's key alone (key: an embedded broker), and of both in that order (both: a daemon).
// The child loads bulkhead's public entry and sets node:crypto up before the clock starts (the same in both builds).
//   node bench/ab/validators-code-ab.mjs <base dist/lib> <this dist/lib> [pairs=20]
// Each dist/lib must sit in a checkout with node_modules (the packaged module requires ajv's runtime).
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [baseArg, thisArg, pairsArg] = process.argv.slice(2);
if (process.argv[2] === '--child') {
  const [lib, mode] = process.argv.slice(3);
  const { createRequire } = await import('node:module');
  const { readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { pathToFileURL } = await import('node:url');
  // What a daemon or a client has loaded before its first check (the public entry: broker, connection, wire, node's
  // net and child_process): measured bare, the check's CPU follows which of node's internals ran before (a harness
  // that loaded child_process turned a 1 ms difference around).
  await import(pathToFileURL(join(lib, 'index.js')).href);
  const mod = await import(pathToFileURL(join(lib, 'protocol', 'validators-code-key.js')).href);
  const dir = join(lib, 'protocol', 'packaged');
  const recorded = createRequire(import.meta.url)(join(dir, readdirSync(dir).find((f) => f.endsWith('.cjs')))).__code;
  process.getBuiltinModule('node:crypto').createHash('sha256').update('warm').digest('hex');
  const start = process.cpuUsage();
  if (mode !== 'key' && !mod.validatorsCodeMatches(recorded)) throw new Error(`${lib}: the packaged module does not match its build`);
  if (mode !== 'matches') mod.validatorsCodeKey();
  const used = process.cpuUsage(start);
  process.stdout.write(String(used.user + used.system));
  process.exit(0);
}
if (baseArg === undefined || thisArg === undefined) throw new Error('usage: validators-code-ab.mjs <base dist/lib> <this dist/lib> [pairs]');
const pairs = Number(pairsArg ?? 20);
const self = fileURLToPath(import.meta.url);
const builds = { base: resolve(baseArg), this: resolve(thisArg) };
const modes = ['matches', 'both', 'key'];
const us = {};
const loads = [];
for (let i = 0; i < pairs; i++) {
  for (const mode of modes) {
    for (const [name, lib] of i % 2 === 0 ? Object.entries(builds) : Object.entries(builds).reverse()) {
      (us[`${mode} ${name}`] ??= []).push(Number(execFileSync(process.execPath, [self, '--child', lib, mode], { encoding: 'utf8' })));
    }
  }
  loads.push(loadavg()[0]);
}
const q = (v, p) => [...v].sort((a, b) => a - b)[Math.floor(p * (v.length - 1))];
for (const mode of modes) {
  for (const name of Object.keys(builds)) {
    const v = us[`${mode} ${name}`];
    console.log(`${mode.padEnd(8)} ${name.padEnd(5)} p50 ${q(v, 0.5)} us  p25 ${q(v, 0.25)}  p75 ${q(v, 0.75)}  (n ${v.length})`);
  }
}
console.log(`node ${process.version}, load ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
