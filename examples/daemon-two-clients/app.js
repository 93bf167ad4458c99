// A client app of the daemon: it proves who it is with an identity (a
// certificate from the daemon's CA and its key), then uses services through
// the daemon exactly as it would use an embedded broker's.
//
//   node app.js NAME IDENTITY_DIR SOCKET
//
// NAME.cert.pem and NAME.key.pem are what `bulkhead identity issue NAME` wrote into IDENTITY_DIR.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectTo, isBulkheadError } from 'bulkhead';

const [name, identityDir, socketPath] = process.argv.slice(2);
if (socketPath === undefined) {
  console.error('usage: node app.js NAME IDENTITY_DIR SOCKET');
  process.exit(1);
}

const identity = {
  name,
  certPem: readFileSync(join(identityDir, `${name}.cert.pem`), 'utf8'),
  keyPem: readFileSync(join(identityDir, `${name}.key.pem`), 'utf8'),
};
// The app keeps its own copies of the protocols: results are validated against them.
const daemon = connectTo(socketPath, identity, { protocolsDir: fileURLToPath(new URL('./protocols/', import.meta.url)) });

/** A call's result, or the code it was refused with. */
async function attempt(call) {
  try {
    return { ok: true, value: await call };
  } catch (err) {
    if (!isBulkheadError(err)) throw err;
    return { ok: false, code: err.code, message: err.message };
  }
}

const result = { app: name, pid: process.pid };
try {
  const greeter = daemon.connect('greeter', { protocol: 'com.example.greeter' });
  const hello = await attempt(greeter.call('hello', {}));
  result.greeter = hello.ok ? hello.value : { code: hello.code };
  console.log(`[${name}] greeter.hello -> ${hello.ok ? `"${hello.value.greeting}" (ctx.peer.name = ${hello.value.peer})` : hello.code}`);

  const ledger = daemon.connect('ledger', { protocol: 'com.example.ledger' });
  const recorded = await attempt(ledger.call('record', { amountCents: 4200, memo: `invoice from ${name}` }));
  result.ledger = recorded.ok ? recorded.value : { code: recorded.code };
  console.log(`[${name}] ledger.record -> ${recorded.ok ? `entry ${recorded.value.entry} by ${recorded.value.by}, balance ${recorded.value.balanceCents}` : `${recorded.code}: ${recorded.message}`}`);
} finally {
  await daemon.close();
}
console.log(`APP-RESULT ${JSON.stringify(result)}`);
