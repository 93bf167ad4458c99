// Builds native/parent-death/parent_death.c into dist/native/parent-death: the
// stage that starts an unsandboxed helper with a parent-death signal
// (lib/broker/parent-death.ts), cheaper than setpriv's exec. Linked statically
// where the C library's static archive exists (no dynamic loader work per
// launch), else dynamically. Optional: without a C compiler the broker uses
// setpriv, as before.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'parent-death', 'parent_death.c');
const out = join(root, 'dist', 'native', 'parent-death');
mkdirSync(dirname(out), { recursive: true });
rmSync(out, { force: true }); // never leave a stale build behind a failed one
const cc = process.env.CC ?? 'cc';
const base = ['-O2', '-s', '-Wall', '-Wextra', source, '-o', out];
try {
  execFileSync(cc, ['-static', ...base], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch {
  try {
    execFileSync(cc, base, { stdio: 'inherit' });
  } catch (err) {
    process.stderr.write(`build-parent-death: compiling failed (${err.message}); unsandboxed helpers will be started through setpriv for their parent-death signal.\n`);
  }
}
