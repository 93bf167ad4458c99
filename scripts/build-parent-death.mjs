// Builds native/parent-death/parent_death.c into dist/native/parent-death: the
// stage that starts an unsandboxed helper with a parent-death signal
// (lib/broker/parent-death.ts), cheaper than setpriv's exec. In order of
// cost per launch: without libc (raw syscalls, x86_64 and aarch64), linked
// statically with libc (where its static archive exists), dynamically.
// Optional: without a C compiler the broker uses setpriv, as before.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { nativeTarget } from './native-build.mjs';

const { source, out } = nativeTarget('parent-death', 'parent_death.c', 'parent-death', { fresh: true });
const cc = process.env.CC ?? 'cc';
const common = ['-O2', '-s', '-Wall', '-Wextra', source, '-o', out];
const attempts = [
  ['-DBULKHEAD_NOLIBC', '-static', '-nostdlib', '-ffreestanding', '-fno-stack-protector', '-fno-builtin', ...common],
  ['-static', ...common],
  common,
];
let built = false;
for (const [i, args] of attempts.entries()) {
  try {
    execFileSync(cc, args, { stdio: ['ignore', 'ignore', i === attempts.length - 1 ? 'inherit' : 'pipe'] });
    built = true;
    break;
  } catch {
    rmSync(out, { force: true });
  }
}
if (!built) process.stderr.write('build-parent-death: compiling failed; unsandboxed helpers will be started through setpriv for their parent-death signal.\n');
