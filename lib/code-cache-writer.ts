/**
 * The broker's code-cache writer, a node process of its own (`node [the
 * helper's V8 flags] code-cache-writer.js <cache dir>`, started by
 * lib/broker/code-cache.ts): loads the helper runtime exactly as a helper's
 * `bulkhead/service` does, then warms it up the way a helper's first call
 * goes: the runtime's own `serve()` answers a small protocol (its file and
 * precompiled validators made here as the broker makes them, in a work
 * directory of this process inside the cache directory, which helpers cannot
 * write: this process runs that module unsandboxed) on one end of a
 * Unix socket, while this process plays the broker on the other end: hello,
 * then a few calls. After the last reply it saves V8's code cache, which holds
 * the bytecode of every function compiled so far (the runtime's top level and
 * serve()'s first call: protocol and validators loading, the frame decoder,
 * envelope codec, plain-data walk, hello check, call gate, reply encoder), with
 * a copy of the runtime's source in front (lib/util/runtime-loader.ts), and
 * prints the file's path. The file is written beside its final name and
 * renamed, so a helper never reads half of one. Helpers only ever read it.
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCacheContents, codeCacheFile, loadRuntime, runtimeBuildId } from './util/runtime-loader.js';
import { loadProtocolFile } from './protocol/registry.js';
import { precompileValidators } from './protocol/precompiled.js';
import { HELPER_ENV } from './wire/helper-env.js';
import { writeFileAtomically } from './util/atomic-write.js';
import { evictInBinaryDir, evictNodeCompileCaches, evictOtherBinaries, WARM_UP_PREFIX } from './util/cache-eviction.js';
import { FramedChannel } from './wire/framed-channel.js';

/** A protocol shaped like a small service's: one method with an object of a few typed fields. */
const WARM_PROTOCOL = {
  name: 'bulkhead.warm-up',
  version: '1.0.0',
  methods: {
    echo: {
      params: { type: 'object', required: ['name', 'n'], additionalProperties: false, properties: { name: { type: 'string' }, n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } },
      result: { type: 'object', required: ['name', 'n'], additionalProperties: false, properties: { name: { type: 'string' }, n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } },
    },
  },
};
const CALLS = 3;

const fail = (message: string, code: number): never => {
  process.stderr.write(`code-cache-writer: ${message}\n`);
  process.exit(code);
};

const dir = process.argv[2];
if (dir === undefined || dir === '') fail('usage: code-cache-writer.js <cache directory>', 64);
const file = fileURLToPath(new URL('./service.runtime.cjs', import.meta.url));
// From source: the cache saved is this compile's, never one read from the directory.
const runtime = loadRuntime(file, undefined);
const buildId = runtimeBuildId(runtime.source) ?? fail(`${file} has no build id; rebuild bulkhead.`, 65);
const rt = runtime.exports as typeof import('./service.js');

// What a broker hands a helper: its protocol file, precompiled validators and limits. Not in TMPDIR nor the shared
// validators directory: a helper that may write there (the same uid, a write path over TMPDIR) could swap the module
// this process then runs; the cache directory is read-only in every helper's sandbox (lib/sandbox/broker-caches.ts).
const work = mkdtempSync(join(dir!, WARM_UP_PREFIX));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const protocolFile = join(work, 'bulkhead.warm-up.json');
writeFileSync(protocolFile, JSON.stringify(WARM_PROTOCOL));
const validators = precompileValidators(loadProtocolFile(protocolFile), work);
process.env[HELPER_ENV.protocolFile] = protocolFile;
if (validators !== undefined) process.env[HELPER_ENV.validators] = validators;
process.env[HELPER_ENV.heartbeatMs] = '1000';
process.env[HELPER_ENV.maxInFlight] = '256';
process.env[HELPER_ENV.maxQueued] = '1024';
process.env[HELPER_ENV.maxFrameBytes] = String(16 * 1024 * 1024);

/** Saves the cache (after the last reply, while serve() still runs: it exits the process when its socket closes). */
function save(): void {
  const target = codeCacheFile(dir!, buildId, process.execArgv);
  writeFileAtomically(target, codeCacheContents(runtime.source, runtime.script.createCachedData()));
  // What no broker used for a week, here and among other node binaries' directories (lib/util/cache-eviction.ts).
  evictInBinaryDir(dir!, [basename(target), basename(work)]);
  evictOtherBinaries(dirname(dir!), basename(dir!));
  evictNodeCompileCaches(dirname(dir!));
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(target, () => process.exit(0));
}

const server = createServer();
const path = `\0bulkhead-warm-up-${String(process.pid)}`;
server.once('connection', (socket: Socket) => {
  // serve() takes this socket as a prewarmed spare's entry hands it fd 3.
  rt.handOverBrokerSocket(socket);
  rt.serve('bulkhead.warm-up', { echo: (params: unknown) => params });
});
server.listen(path, () => {
  const channel = new FramedChannel(createConnection(path));
  let replies = 0;
  channel.attach({
    envelope: (e) => {
      if (e.kind === 'hello') {
        channel.send({ kind: 'hello', role: 'client', protocol: e.protocol, version: e.version, schemaHash: e.schemaHash, info: { broker: 0 } });
        for (let id = 1; id <= CALLS; id++) channel.send({ kind: 'call', id, method: 'echo', params: { name: 'bulkhead', n: id, tags: ['a', 'bb'] }, meta: null });
      } else if (e.kind === 'reply' && ++replies === CALLS) {
        save();
      } else if (e.kind === 'error') {
        fail(`the warm-up call failed: ${e.error.code} ${e.error.message}`, 70);
      }
    },
    closed: () => fail('the warm-up channel closed early', 70),
  });
});
setTimeout(() => fail('the warm-up took longer than 30 s', 70), 30_000).unref();
