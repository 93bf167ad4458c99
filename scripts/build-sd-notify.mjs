// Builds native/sd-notify/sd_notify.c into dist/native/sd_notify.node: a
// Node-API addon (one build serves every Node line) that lets `bulkhead daemon`
// send sd_notify datagrams from its own pid. Optional: without a C compiler
// the daemon runs, but cannot tell systemd it is ready (it logs why).
import { execFileSync } from 'node:child_process';
import { nativeTarget, nodeApiInclude } from './native-build.mjs';

const include = nodeApiInclude();
if (include === undefined) {
  process.stderr.write('build-sd-notify: no node_api.h found; skipping the sd_notify addon (bulkhead daemon will not notify systemd).\n');
  process.exit(0);
}
// Not fresh: a failed rebuild leaves the earlier addon in place (as this script always has).
const { source, out } = nativeTarget('sd-notify', 'sd_notify.c', 'sd_notify.node', { fresh: false });
try {
  execFileSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-DNAPI_VERSION=8', `-I${include}`, source, '-o', out], { stdio: 'inherit' });
} catch (err) {
  process.stderr.write(`build-sd-notify: compiling failed (${err.message}); skipping the sd_notify addon (bulkhead daemon will not notify systemd).\n`);
}
