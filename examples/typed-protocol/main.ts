// The app: one connection typed by the generated ComExampleInventoryProtocol.
// Method names, params, results and event payloads are all checked by tsc;
// the two @ts-expect-error lines below are calls tsc refuses (if they ever
// compiled, tsc would fail on the unused directive). They run anyway, through
// the compiled JS, to show the run-time checks that back the types up.
//
//   npx tsc -p examples/typed-protocol && node examples/typed-protocol/build/main.js
import { fileURLToPath } from 'node:url';
import { Broker, isBulkheadError } from 'bulkhead';
import type { ComExampleInventoryErrorCode, ComExampleInventoryProtocol, LowStockEvent, ReserveResult } from './types/com.example.inventory.js';

// This file runs as build/main.js: protocols/ is one directory up, the compiled helper sits next to it.
const root = fileURLToPath(new URL('..', import.meta.url));
const entry = fileURLToPath(new URL('./inventory-service.js', import.meta.url));

const broker = new Broker({ root });
// register<P>() ties the name to its protocol type once; the handle's connect() is typed by it.
const inventoryService = broker.register<ComExampleInventoryProtocol>({ name: 'inventory', entry, protocol: 'com.example.inventory' });
const inventory = inventoryService.connect(); // Connection<ComExampleInventoryProtocol>

// Protocol events: onEvent(name) types the payload; conn.on() takes only the
// lifecycle names (interrupted, invalidated, error, event), so a typo such as
// inventory.on('lowStock', ...) does not compile.
const lowStock: LowStockEvent[] = [];
inventory.onEvent('lowStock', (event) => {
  lowStock.push(event); // event: LowStockEvent
  console.log(`  event lowStock: ${event.sku}, ${event.remaining} left`);
});

/** The code a rejected call carries: a handler's declared code (remoteCode) or bulkhead's own. */
async function codeOf(call: Promise<unknown>): Promise<string | null> {
  try {
    await call;
    return null;
  } catch (err) {
    if (!isBulkheadError(err)) throw err;
    const remote = err.data['remoteCode'];
    return typeof remote === 'string' ? remote : err.code;
  }
}

const result: Record<string, unknown> = { ok: false };
try {
  const { available } = await inventory.call('stock', { sku: 'pear' }); // available: number
  console.log(`stock pear: ${available}`);

  const reservation: ReserveResult = await inventory.call('reserve', { sku: 'pear', quantity: 2, priority: 'express' });
  console.log(`reserve 2 pear: ${reservation.reservationId}, ${reservation.remaining} left`);

  // A declared handler error: ERR_SERVICE_ERROR with data.remoteCode, one of the protocol's codes.
  const outOfStock = (await codeOf(inventory.call('reserve', { sku: 'pear', quantity: 5 }))) as ComExampleInventoryErrorCode | null;
  console.log(`reserve 5 pear: ${outOfStock}`);

  // @ts-expect-error quantity is a number in the protocol: tsc refuses this call.
  const wrongType = await codeOf(inventory.call('reserve', { sku: 'pear', quantity: 'two' }));
  console.log(`reserve "two" pear (compiled only through @ts-expect-error): ${wrongType}, refused by the helper before its handler ran`);

  // @ts-expect-error the protocol has no method "restock": tsc refuses this call too.
  const unknownMethod = await codeOf(inventory.call('restock', { sku: 'pear' }));
  console.log(`restock (compiled only through @ts-expect-error): ${unknownMethod}, refused by the connection before sending`);

  Object.assign(result, {
    ok: outOfStock === 'OUT_OF_STOCK' && wrongType === 'ERR_INVALID_PARAMS' && unknownMethod === 'ERR_UNKNOWN_METHOD' && lowStock.length === 1,
    available,
    reservation,
    lowStock,
    outOfStock,
    wrongType,
    unknownMethod,
  });
} catch (err) {
  result['error'] = isBulkheadError(err) ? { code: err.code, message: err.message } : { message: String(err) };
} finally {
  await broker.close();
}
console.log(`EXAMPLE-RESULT ${JSON.stringify(result)}`);
if (result['ok'] !== true) process.exitCode = 1;
