// Builds native/mm-preload/mm_preload.c into dist/native/mm_preload.so: the mm holder of sandboxed helpers, a
// library the native exec guard names in node's LD_PRELOAD (lib/sandbox/kernel-layers.ts; bench/README.md,
// "Round ten: relaunch under a sandbox"). Optional: without a C compiler there is no library, and a sandboxed
// helper's relaunch after a crash takes the path it took before (its EOF after the kernel's teardown).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { nativeTarget, rawSyscalls } from './native-build.mjs';

const { source, out } = nativeTarget('mm-preload', 'mm_preload.c', 'mm_preload.so', { fresh: true });
if (!rawSyscalls) {
  process.stderr.write(`build-mm-preload: no raw syscall convention for ${process.arch}; skipping the sandboxed mm holder.\n`);
  process.exit(0);
}
try {
  // -fno-stack-protector: the holder runs on its own stack with node's main thread's TLS (the canary's home).
  execFileSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-fno-stack-protector', source, '-o', out], { stdio: 'inherit' });
} catch (err) {
  rmSync(out, { force: true });
  process.stderr.write(`build-mm-preload: compiling failed (${err.message}); sandboxed helpers get no mm holder (relaunch after a crash as before).\n`);
}
