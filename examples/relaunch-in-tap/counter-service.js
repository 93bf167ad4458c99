// The helper under test: a counter kept in memory.
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from 'bulkhead/service';

let n = 0;

serve('com.example.counter', {
  next: () => ({ n: ++n, pid: process.pid }),
  wait: async ({ ms }, ctx) => {
    await sleep(ms, null, { signal: ctx.signal });
    return null;
  },
});
