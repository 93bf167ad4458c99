/**
 * Cost of finding a helper's read set (lib/sandbox/module-graph.ts) at launch:
 * cold (nothing cached: lex every file of the graph, read every package.json)
 * and cached (stat every file the set was built from), median of N, for
 * entries from tiny to the whole broker.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/read-set.js [rounds=20]
 * @module
 */
import { fileURLToPath } from 'node:url';
import { clearModuleReadSetCache, moduleReadSet } from '../lib/sandbox/module-graph.js';
import { runtimeReadPaths } from '../lib/broker/package-paths.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const rounds = Number(process.argv[2] ?? 20);
const ENTRIES: Record<string, string> = {
  'escape fixture (1 file + bulkhead/service)': `${ROOT}test/fixtures/sandbox/escape-service.js`,
  'demo markdown service': `${ROOT}examples/demo/services/markdown.js`,
  'the broker itself as an entry (dist/lib/index.js)': `${ROOT}dist/lib/index.js`,
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const granted = runtimeReadPaths();
  console.log(`read set of a helper, median of ${rounds} (node ${process.version})`);
  console.log('| entry | files | packages | cold ms | cached ms |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, entry] of Object.entries(ENTRIES)) {
    const cold: number[] = [];
    const cached: number[] = [];
    let set = await moduleReadSet([entry], granted); // warm-up: JIT, the lexer's wasm
    for (let i = 0; i < rounds; i++) {
      clearModuleReadSetCache();
      let start = performance.now();
      set = await moduleReadSet([entry], granted);
      cold.push(performance.now() - start);
      start = performance.now();
      await moduleReadSet([entry], granted);
      cached.push(performance.now() - start);
    }
    console.log(`| ${name} | ${set.files.length + set.manifests.length} | ${set.packages.length} | ${median(cold).toFixed(2)} | ${median(cached).toFixed(3)} |`);
  }
}

await main();
