// Builds native/mm-holder/mm_holder.c into dist/native/mm_holder.node: a Node-API
// addon (one build serves every Node line) that an unsandboxed prewarmed spare
// loads to start its "mm holder" (lib/prewarm.ts; bench/README.md,
// "Round nine: relaunch after a crash"). Optional: without a C compiler or
// Node's headers there is no holder, and a crashed helper's relaunch takes the
// path it took before (its EOF after the kernel's teardown).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { nativeTarget, nodeApiInclude, rawSyscalls } from './native-build.mjs';

const { source, out } = nativeTarget('mm-holder', 'mm_holder.c', 'mm_holder.node', { fresh: true });
if (!rawSyscalls) {
  process.stderr.write(`build-mm-holder: no raw syscall convention for ${process.arch}; skipping the mm holder (relaunch after a crash as before).\n`);
  process.exit(0);
}
const include = nodeApiInclude();
if (include === undefined) {
  process.stderr.write('build-mm-holder: no node_api.h found; skipping the mm holder (relaunch after a crash as before).\n');
  process.exit(0);
}
try {
  // -fno-stack-protector: the holder runs on its own stack with node's main thread's TLS (the canary's home).
  execFileSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-fno-stack-protector', '-DNAPI_VERSION=8', `-I${include}`, source, '-o', out], { stdio: 'inherit' });
} catch (err) {
  rmSync(out, { force: true });
  process.stderr.write(`build-mm-holder: compiling failed (${err.message}); skipping the mm holder (relaunch after a crash as before).\n`);
}
