/**
 * The warm-up the broker's code-cache writer runs before it saves V8's cache
 * of the runtime (lib/code-cache-writer.ts): one hello and one call through a
 * real RpcServer on a real Unix socket, as a helper's first call goes. V8
 * compiles a function on its first call and `createCachedData()` keeps the
 * bytecode of every function compiled so far, so a helper loading that cache
 * starts with its first call's code (frame decoder, envelope codec, plain-data
 * walk, hello check, validator glue, reply encoder, socket writes) compiled.
 * Runs in the writer only, never in a helper.
 * @module
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { FramedChannel } from '../wire/framed-channel.js';
import { RpcServer } from './rpc-server.js';

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

/**
 * Serves one client over an abstract Unix socket of this process: the client
 * answers the service's hello with its own and sends `calls` calls; resolves
 * once every reply came back and both ends closed.
 */
export async function warmUpRuntime(calls = 3): Promise<void> {
  const protocol = CompiledProtocol.from(WARM_PROTOCOL, 'bulkhead warm-up', { trusted: true, eager: false });
  const server = createServer();
  const path = `\0bulkhead-warm-up-${String(process.pid)}-${String(Date.now())}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  const served = new Promise<void>((resolve) => {
    server.once('connection', (socket: Socket) => {
      const channel = new FramedChannel(socket);
      new RpcServer(channel, protocol, { echo: (params: unknown) => params }, { goodbye: () => channel.end('warm-up done'), closed: () => resolve() });
    });
  });
  const client = createConnection(path);
  const channel = new FramedChannel(client);
  const answered = new Promise<void>((resolve, reject) => {
    let replies = 0;
    channel.attach({
      envelope: (e) => {
        if (e.kind === 'hello') {
          channel.send({ kind: 'hello', role: 'client', protocol: protocol.name, version: protocol.version, schemaHash: protocol.hash, info: { broker: 0 } });
          for (let id = 1; id <= calls; id++) channel.send({ kind: 'call', id, method: 'echo', params: { name: 'bulkhead', n: id, tags: ['a', 'bb'] }, meta: null });
        } else if (e.kind === 'reply' && ++replies === calls) {
          resolve();
        } else if (e.kind === 'error') {
          reject(new Error(`warm-up call failed: ${e.error.code}`));
        }
      },
      closed: () => resolve(),
    });
  });
  await answered;
  channel.end('warm-up done');
  await served;
  client.destroy();
  await new Promise((resolve) => server.close(resolve));
}
