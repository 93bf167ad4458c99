// `npm start` runs this instead of a full build: it builds only when dist/ is missing or older
// than a source file, so the second `npm start` starts the demo at once instead of waiting for tsc.
import { execSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', 'lib', 'service.bundle.js'); // the build's last output

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((max, name) => Math.max(max, newest(join(path, name))), st.mtimeMs);
}

let built = 0;
try {
  built = statSync(stamp).mtimeMs;
} catch {
  // never built
}
const sources = Math.max(newest(join(root, 'lib')), newest(join(root, 'test')), newest(join(root, 'bench')), newest(join(root, 'tsconfig.json')), newest(join(root, 'package.json')));
if (sources > built) execSync('npm run build', { cwd: root, stdio: 'inherit' });
