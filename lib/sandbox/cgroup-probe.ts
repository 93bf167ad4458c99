/**
 * Where this host lets the broker make per-helper cgroups: a delegated cgroup
 * v2 subtree (`BULKHEAD_CGROUP`, or root with the controllers at the v2 root),
 * or cgroup v1's memory/pids/cpu hierarchies when the broker is root. Probed
 * once per process. See docs/sandbox.md#cgroups.
 * @module
 */
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The controllers bulkhead uses. */
export type CgroupController = 'memory' | 'pids' | 'cpu';

/** Every controller bulkhead uses, in a fixed order. */
export const CONTROLLERS: readonly CgroupController[] = ['memory', 'pids', 'cpu'];

/** Where this host lets the broker make helper cgroups. */
export interface CgroupSupport {
  /** cgroup v1 (one hierarchy per controller) or the unified v2 hierarchy. */
  version: 1 | 2;
  /** Per available controller, the directory under which helper cgroups are made. */
  parents: Partial<Record<CgroupController, string>>;
  /** Why a controller is missing, when one is. */
  problem: string | null;
}

/** Names a delegated cgroup v2 directory for helper cgroups (see docs/sandbox.md#cgroups). */
export const CGROUP_ENV = 'BULKHEAD_CGROUP';

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  options: string[];
}

function mounts(): Mount[] {
  const result: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType, , superOptions] = right.split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    result.push({ root: unescapeMount(fields[3] ?? '/'), mountPoint: unescapeMount(fields[4] ?? ''), fsType, options: (superOptions ?? '').split(',') });
  }
  return result;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** This process's cgroup path per v1 controller, and its v2 path under key "". */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    for (const name of match[1]!.split(',')) own.set(name, match[2]!);
  }
  return own;
}

function within(mount: Mount, path: string): string | null {
  if (mount.root === '/') return join(mount.mountPoint, path);
  if (path === mount.root || path.startsWith(`${mount.root}/`)) return join(mount.mountPoint, path.slice(mount.root.length));
  return null;
}

function writable(dir: string): boolean {
  try {
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Reads a file of whitespace-separated words ([] when it cannot be read). */
export function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/).filter((w) => w !== '');
  } catch {
    return [];
  }
}

function probeV2(isRoot: boolean): CgroupSupport | null {
  const configured = process.env[CGROUP_ENV];
  let parent: string | undefined;
  if (configured !== undefined && configured !== '') {
    parent = configured;
  } else if (isRoot) {
    const mount = mounts().find((m) => m.fsType === 'cgroup2' && m.root === '/');
    if (mount === undefined) return null;
    const available = readWords(join(mount.mountPoint, 'cgroup.controllers'));
    if (!CONTROLLERS.some((c) => available.includes(c))) return null; // a hybrid host: controllers live in v1
    parent = join(mount.mountPoint, 'bulkhead');
  }
  if (parent === undefined) return null;
  try {
    mkdirSync(parent, { recursive: true });
    const available = readWords(join(parent, 'cgroup.controllers'));
    const wanted = CONTROLLERS.filter((c) => available.includes(c));
    const enabled = readWords(join(parent, 'cgroup.subtree_control'));
    const missing = wanted.filter((c) => !enabled.includes(c));
    if (missing.length > 0) writeFileSync(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    const now = readWords(join(parent, 'cgroup.subtree_control'));
    const parents: CgroupSupport['parents'] = {};
    for (const c of CONTROLLERS) if (now.includes(c)) parents[c] = parent;
    const absent = CONTROLLERS.filter((c) => parents[c] === undefined);
    return { version: 2, parents, problem: absent.length > 0 ? `cgroup v2 at ${parent} does not delegate ${absent.join(', ')}` : null };
  } catch (err) {
    return { version: 2, parents: {}, problem: `cgroup v2 at ${parent} is not usable: ${(err as Error).message}` };
  }
}

function probeV1(): CgroupSupport | null {
  const own = ownCgroups();
  const parents: CgroupSupport['parents'] = {};
  const problems: string[] = [];
  for (const c of CONTROLLERS) {
    const mount = mounts().find((m) => m.fsType === 'cgroup' && m.options.includes(c));
    if (mount === undefined) continue;
    const dir = within(mount, own.get(c) ?? '/');
    if (dir === null) continue;
    // Nested under the broker's own cgroup: helpers stay inside whatever limits the broker runs under.
    // The "bulkhead" dir is made with the first helper's and removed with the last, so nothing stays.
    if (writable(dir)) parents[c] = join(dir, 'bulkhead');
    else problems.push(`${dir} is not writable`);
  }
  if (Object.keys(parents).length === 0 && problems.length === 0) return null;
  const absent = CONTROLLERS.filter((c) => parents[c] === undefined);
  return { version: 1, parents, problem: absent.length > 0 ? `cgroup v1 lacks a usable ${absent.join(', ')} hierarchy${problems.length > 0 ? ` (${problems.join('; ')})` : ''}` : null };
}

/**
 * Finds where helper cgroups can be made on this host (v2 first, then v1).
 * @returns null when the host has no usable cgroup controller at all
 */
export function probeCgroups(isRoot: boolean): CgroupSupport | null {
  let support = probed.get(isRoot);
  if (support === undefined) {
    support = probeOnce(isRoot);
    probed.set(isRoot, support);
  }
  return support;
}

const probed = new Map<boolean, CgroupSupport | null>();

function probeOnce(isRoot: boolean): CgroupSupport | null {
  try {
    const v2 = probeV2(isRoot);
    if (v2 !== null && Object.keys(v2.parents).length > 0) return v2;
    const v1 = isRoot ? probeV1() : null;
    return v1 ?? v2;
  } catch {
    // no /proc (not Linux): no cgroups
    return null;
  }
}

