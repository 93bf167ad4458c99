/**
 * The broker's code-cache writer, a node process of its own (`node [the
 * helper's V8 flags] code-cache-writer.js <cache dir>`, started by
 * lib/broker/code-cache.ts): loads the helper runtime exactly as a helper's
 * `bulkhead/service` does, runs a hello and a few calls through it
 * (lib/connection/runtime-warmup.ts), then saves V8's code cache with a copy of
 * the runtime's source in front (lib/util/runtime-loader.ts) and prints the
 * file's path. The file is written beside its final name and renamed, so a
 * helper never reads half of one. Helpers only ever read these files.
 * @module
 */
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { codeCacheContents, codeCacheFile, loadRuntime, runtimeBuildId } from './util/runtime-loader.js';

const dir = process.argv[2];
if (dir === undefined || dir === '') {
  process.stderr.write('usage: code-cache-writer.js <cache directory>\n');
  process.exit(64);
}
const file = fileURLToPath(new URL('./service.runtime.cjs', import.meta.url));
// From source: the cache saved is this compile's, never one read from the directory.
const runtime = loadRuntime(file, undefined);
const buildId = runtimeBuildId(runtime.source);
if (buildId === undefined) {
  process.stderr.write(`code-cache-writer: ${file} has no build id; rebuild bulkhead.\n`);
  process.exit(65);
}
await (runtime.exports['warmUpRuntime'] as () => Promise<void>)();
const target = codeCacheFile(dir, buildId, process.execArgv);
const temporary = `${target}.${String(process.pid)}.tmp`;
writeFileSync(temporary, codeCacheContents(runtime.source, runtime.script.createCachedData()), { mode: 0o644 });
chmodSync(temporary, 0o644); // whatever the umask: helpers of other uids read it
renameSync(temporary, target);
process.stdout.write(target);
