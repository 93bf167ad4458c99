/**
 * Turns the paths given on the command line into the JSON files to check:
 * a file is taken as is; a directory contributes its `*.json` files and those
 * of its `protocols/` and `sandbox-profiles/` subdirectories (so
 * `bulkhead validate .` in an app root checks everything). Not recursive.
 * @module
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** What a JSON file is, as far as bulkhead is concerned. */
export type FileKind = 'protocol' | 'config' | 'profile';

/** One file found. */
export interface FoundFile {
  /** Path as the user would write it (their path, or joined onto their directory). */
  path: string;
  /** The kind its location implies (`protocols/` or `sandbox-profiles/`), if any. */
  hint: FileKind | undefined;
  /** Named on the command line (not found by scanning a directory). */
  explicit: boolean;
}

/** Subdirectories with a fixed meaning. */
const KIND_DIRS: Record<string, FileKind> = { protocols: 'protocol', 'sandbox-profiles': 'profile' };

/** The kind a file's directory implies. */
export function kindFromLocation(path: string): FileKind | undefined {
  return KIND_DIRS[basename(dirname(path))];
}

/**
 * Expands paths into JSON files, in a stable order (sorted within a directory).
 * @param options.subdirs - which of `protocols/` and `sandbox-profiles/` to look into (default both)
 * @returns the files, and the paths that do not exist
 */
export function collectJsonFiles(paths: readonly string[], options: { subdirs?: readonly FileKind[] } = {}): { files: FoundFile[]; missing: string[] } {
  const subdirs = Object.entries(KIND_DIRS).filter(([, kind]) => options.subdirs?.includes(kind) ?? true);
  const files: FoundFile[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  const add = (file: FoundFile): void => {
    if (seen.has(file.path)) return;
    seen.add(file.path);
    files.push(file);
  };
  const scan = (dir: string, hint: FileKind | undefined): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isFile() && entry.name.endsWith('.json')) add({ path: join(dir, entry.name), hint, explicit: false });
    }
  };
  for (const path of paths) {
    let stats;
    try {
      stats = statSync(path);
    } catch {
      missing.push(path);
      continue;
    }
    if (!stats.isDirectory()) {
      add({ path, hint: kindFromLocation(path), explicit: true });
      continue;
    }
    scan(path, KIND_DIRS[basename(path)]);
    for (const [sub, hint] of subdirs) {
      const dir = join(path, sub);
      if (isDirectory(dir)) scan(dir, hint);
    }
  }
  return { files, missing };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
