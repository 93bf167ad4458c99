// Builds native/exec-guard/exec_guard.c into dist/native/exec-guard: the exec
// guard's native stage (lib/sandbox/exec-guard.ts), a few milliseconds per
// launch where the node stage costs a node start. Optional: without a C
// compiler (or the kernel headers) the sandbox uses the node stage instead.
import { execFileSync } from 'node:child_process';
import { nativeTarget } from './native-build.mjs';

const { source, out } = nativeTarget('exec-guard', 'exec_guard.c', 'exec-guard', { fresh: true });
try {
  execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-Wextra', '-pthread', source, '-o', out], { stdio: 'inherit' });
} catch (err) {
  process.stderr.write(`build-exec-guard: compiling failed (${err.message}); the sandbox will use the node stage for the exec guard (one node start per launch).\n`);
}
