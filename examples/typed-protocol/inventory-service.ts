// The helper, typed by the same generated file as the app: each handler's
// params, result and ctx.emit() are checked against the protocol by tsc.
import { serve, type Handlers } from 'bulkhead/service';
import type { ComExampleInventoryErrorCode, ComExampleInventoryProtocol } from './types/com.example.inventory.js';

const REORDER_LEVEL = 3;
const shelves = new Map<string, number>([['apple', 12], ['pear', 4]]);
let reservations = 0;

/** Throws one of the error codes the protocol declares; the caller gets it as error.data.remoteCode. */
function fail(code: ComExampleInventoryErrorCode, message: string): never {
  throw Object.assign(new Error(message), { code });
}

function onShelf(sku: string): number {
  return shelves.get(sku) ?? fail('UNKNOWN_SKU', `This shop does not sell "${sku}".`);
}

const handlers: Handlers<ComExampleInventoryProtocol> = {
  stock: ({ sku }) => ({ sku, available: onShelf(sku) }),
  reserve: async ({ sku, quantity }, ctx) => {
    const available = onShelf(sku);
    if (quantity > available) fail('OUT_OF_STOCK', `Only ${available} ${sku} left; ${quantity} were asked for.`);
    const remaining = available - quantity;
    shelves.set(sku, remaining);
    // emit() resolves once the reader keeps up: awaiting it paces a chatty helper (docs/protocols.md).
    if (remaining < REORDER_LEVEL) await ctx.emit('lowStock', { sku, remaining });
    return { reservationId: `r-${++reservations}`, remaining };
  },
};

serve<ComExampleInventoryProtocol>('com.example.inventory', handlers);
