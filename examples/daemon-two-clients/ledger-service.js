// The restricted service. It never sees a caller the daemon did not
// authorise, and ctx.peer.name is the name from the caller's certificate,
// not anything the caller wrote in its call.
import { serve } from 'bulkhead/service';

let entries = 0;
let balanceCents = 0;

serve('com.example.ledger', {
  record: ({ amountCents }, ctx) => {
    balanceCents += amountCents;
    return { entry: ++entries, by: ctx.peer.name, balanceCents };
  },
});
