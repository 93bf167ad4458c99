/**
 * Where koffi's files are, for the pre-exec stage that loads it inside the sandbox (lib/sandbox/kernel-layers.ts
 * binds them in and names them to Landlock): its package directory and the native binary this process loaded.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { loadFfi } from './ffi.js';

/**
 * The koffi binary the broker itself loaded (koffi's index.js picks the right one of its prebuilt
 * binaries, glibc or musl). The pre-exec step requires it directly: measured over bare `node -e 0`
 * (21 interleaved runs, loaded machine), koffi's index.js added 63 ms, the binary alone 31 ms.
 */
export function koffiNative(): string | null {
  if (!loadFfi().ok) return null;
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).find((key) => key.endsWith('koffi.node')) ?? null;
}

/** koffi's package directory, found once per process (a resolve and a walk up: ~0.2 ms, on every sandboxed plan before). */
let koffiPackageDir: string | null | undefined;

/** koffi's package directory (the pre-exec step reads it inside the sandbox), or null where koffi is not installed. */
export function koffiDir(): string | null {
  koffiPackageDir ??= findKoffiDir();
  return koffiPackageDir;
}

function findKoffiDir(): string | null {
  let dir: string;
  try {
    // koffi 3 exports no ./package.json: resolve its main file and walk up to the package root.
    dir = dirname(createRequire(import.meta.url).resolve('koffi'));
  } catch {
    return null;
  }
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  return dir;
}
