// What the scripts that build native/ into dist/native share (build-exec-guard, build-mm-holder, build-mm-preload,
// build-parent-death, build-sd-notify): where a source and its output are, and where Node's headers are. Each of
// those builds is optional: a failure says what bulkhead does without it and never fails `npm run build`.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * native/<dir>/<file> and dist/native/<name>, with dist/native made.
 * @param {{ fresh: boolean }} options - fresh: first remove what an earlier build left at the output, so that a
 *   failed build never leaves a stale one behind
 * @returns {{ source: string, out: string }}
 */
export function nativeTarget(dir, file, name, { fresh }) {
  const source = join(root, 'native', dir, file);
  const out = join(root, 'dist', 'native', name);
  mkdirSync(dirname(out), { recursive: true });
  if (fresh) rmSync(out, { force: true });
  return { source, out };
}

/** Where Node's headers (node_api.h) are: beside the running binary (<prefix>/include/node), as Debian and the official tarballs lay them out; else undefined. */
export function nodeApiInclude() {
  return [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find((dir) => existsSync(join(dir, 'node_api.h')));
}

/** Whether native/'s raw system calls know this architecture's convention (x86_64 and aarch64). */
export const rawSyscalls = process.arch === 'x64' || process.arch === 'arm64';
