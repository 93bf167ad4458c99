// The scheduled helper: deletes old files from a directory. The broker calls
// sweep() on the schedule in its manifest; the helper also tells every
// connected app what each run did (the 'swept' event).
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from 'bulkhead/service';

const service = serve('com.example.cleanup', {
  sweep: ({ dir, maxAgeMs }) => {
    const now = Date.now();
    const removed = [];
    let kept = 0;
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      const stat = statSync(file);
      if (!stat.isFile()) continue;
      if (now - stat.mtimeMs > maxAgeMs) {
        rmSync(file);
        removed.push(name);
      } else {
        kept++;
      }
    }
    const summary = { removed, kept, pid: process.pid };
    service.emit('swept', summary);
    return summary;
  },
});
