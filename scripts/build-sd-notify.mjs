// Builds native/sd-notify/sd_notify.c into dist/native/sd_notify.node: a
// Node-API addon (one build serves every Node line) that lets `bulkhead daemon`
// send sd_notify datagrams from its own pid. Optional: without a C compiler
// the daemon runs, but cannot tell systemd it is ready (it logs why).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'sd-notify', 'sd_notify.c');
const out = join(root, 'dist', 'native', 'sd_notify.node');
// Node's headers: beside the running binary (<prefix>/include/node), as Debian and the official tarballs lay them out.
const include = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find((dir) => existsSync(join(dir, 'node_api.h')));
if (include === undefined) {
  process.stderr.write('build-sd-notify: no node_api.h found; skipping the sd_notify addon (bulkhead daemon will not notify systemd).\n');
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-DNAPI_VERSION=8', `-I${include}`, source, '-o', out], { stdio: 'inherit' });
} catch (err) {
  process.stderr.write(`build-sd-notify: compiling failed (${err.message}); skipping the sd_notify addon (bulkhead daemon will not notify systemd).\n`);
}
