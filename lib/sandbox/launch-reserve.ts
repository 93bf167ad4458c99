/**
 * The pieces of one service's next sandboxed launch, made ahead: its cgroup's
 * directories and its scratch dir. Making them costs a launch ~0.2 ms (the
 * scratch dir) and ~0.1–0.3 ms (the cgroup's `mkdir`s, more at load) of wall
 * time between the call and the spawn; a reserve moves that work to the end of
 * the previous helper's teardown (the broker refills it once the helper's
 * cleanup is done, lib/broker/helper-spawner.ts).
 *
 * What it keeps, so that a reserved piece is as good as a fresh one:
 * - **One launch per piece.** A piece is handed out once and forgotten; the
 *   plan that took it removes it at its cleanup, as it removes the pieces it
 *   made itself. Nothing is shared between two helpers.
 * - **A scratch dir is taken only while pristine**: a directory (not a link)
 *   with mode 0700, owned by the uid the helper will run as, holding its empty
 *   `tmp/` and nothing else. Anything planted in it meanwhile makes it
 *   discarded (removed) and the launch makes a fresh one.
 * - **A cgroup is taken only while empty** (no process in `cgroup.procs`), and
 *   with the same controllers under the same parents as the launch planned;
 *   its limits are written when it is taken, from the launch's plan, whatever
 *   its files say by then.
 * - **Nothing outlives the service**: {@link LaunchReserve.release} removes
 *   what is held (the broker calls it when the service closes or its manifest
 *   changes), and every piece carries the broker's tag in its name, so a broker
 *   killed with SIGKILL leaves nothing the next broker does not reap
 *   (`reapStaleSandboxState`), as with a running helper's pieces; a process that exits without closing its
 *   broker removes them in an `exit` hook.
 * - No file descriptor is held: the seccomp program's memfd and pasta's pipes
 *   are still made per launch (cheap), never ahead.
 * - **The compile for those pieces** is made too, on the turn after they are
 *   (what waits on the teardown, e.g. `stop()`, goes first), and taken by the
 *   next launch only when it is the compile that launch would make
 *   (lib/sandbox/prepared-compile.ts).
 * @module
 */
import { lstatSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { HelperCgroup, type CgroupLimits, type CgroupSupport } from './cgroup.js';
import { createScratch, type Scratch } from './scratch.js';
import { PreparedCompile, type CompileRecipe } from './prepared-compile.js';
import type { CompileInput, CompiledLaunch } from './compile.js';
import type { HostProbe } from './host-probe.js';
import type { SandboxProfile } from './profile.js';

/** The uid/gid a scratch dir is handed to (a root broker's dropped helper), or undefined (the broker's own). */
export type ScratchOwner = { uid: number; gid: number } | undefined;

/** What a launch used, so the reserve can make the same for the next one. */
export interface LaunchShape {
  scratch: { service: string; owner: ScratchOwner };
  cgroup?: { support: CgroupSupport; label: string; limits: CgroupLimits };
  /** Its compile but for the pieces: the next launch's is made from it ahead. */
  compile?: CompileRecipe;
}

/** Reserves holding pieces, for the exit hook. */
const holding = new Set<LaunchReserve>();
let exitHook = false;

/**
 * A broker's process that exits without closing its broker would leave its reserved pieces to the next broker's reaper:
 * at exit, what is still held is removed (synchronously, best effort: empty directories, an empty cgroup).
 */
function removeHeldAtExit(): void {
  for (const reserve of holding) reserve.removeNow();
}

/** Pieces made ahead for one service's next sandboxed launch (see the module comment). */
export class LaunchReserve {
  private scratch: { piece: Scratch; service: string; owner: ScratchOwner } | undefined;
  private cgroup: HelperCgroup | undefined;
  private shape: LaunchShape | undefined;
  /** The compile for the held pieces, made ahead (lib/sandbox/prepared-compile.ts). */
  private prepared: PreparedCompile | undefined;
  /** Removals of discarded or released pieces; {@link release} reports their failures. */
  private removals: Promise<void>[] = [];

  /** True while a scratch dir or a cgroup is held. */
  get holds(): boolean {
    return this.scratch !== undefined || this.cgroup !== undefined;
  }

  /** The held pieces' paths (for tests and status): the scratch dir, then the cgroup's directories. */
  get paths(): { scratch: string | undefined; cgroup: string[] } {
    return { scratch: this.scratch?.piece.path, cgroup: this.cgroup?.paths ?? [] };
  }

  /**
   * The reserved scratch dir when it was made for `service` and `owner` and is still pristine; else undefined (a
   * held one that is not pristine is removed).
   */
  takeScratch(service: string, owner: ScratchOwner): Scratch | undefined {
    const held = this.scratch;
    if (held === undefined) return undefined;
    this.scratch = undefined;
    if (!this.holds) holding.delete(this);
    if (held.service === service && sameOwner(held.owner, owner) && pristine(held.piece, owner)) return held.piece;
    this.removals.push(held.piece.remove());
    return undefined;
  }

  /**
   * The reserved cgroup standing in for `planned` (same layout, empty), with `planned`'s limits; else undefined (a
   * held one that does not fit is removed, killing whatever joined it).
   */
  takeCgroup(planned: HelperCgroup): HelperCgroup | undefined {
    const held = this.cgroup;
    if (held === undefined) return undefined;
    this.cgroup = undefined;
    if (!this.holds) holding.delete(this);
    if (held.sameLayout(planned) && held.isEmpty()) return held.withLimits(planned.limits);
    this.removals.push(held.remove());
    return undefined;
  }

  /**
   * The compile made ahead for the held pieces, when it is what `compileProfile(profile, probe, input)` would return
   * now (asking `input.cgroupFor` only then); else undefined, and the launch compiles. Forgotten either way.
   */
  takeCompile(profile: SandboxProfile, probe: HostProbe, input: CompileInput): CompiledLaunch | undefined {
    const prepared = this.prepared;
    this.prepared = undefined;
    const compiled = prepared?.take(profile, probe, input);
    if (compiled !== undefined) this.compilesTaken++;
    return compiled;
  }

  /** How many launches took a compile made ahead (for tests). */
  compilesTaken = 0;

  /** True while a compile made ahead waits for the next launch (for tests). */
  get compilePrepared(): boolean {
    return this.prepared !== undefined;
  }

  /** Records what a launch used: {@link refill} makes the same next. */
  remember(shape: LaunchShape): void {
    this.shape = shape;
  }

  /**
   * Makes what the last launch used and is not held yet (synchronous: a few syscalls). Never throws: a piece that
   * cannot be made is left to the next launch, which makes its own and reports why it could not.
   */
  refill(): void {
    const shape = this.shape;
    if (shape === undefined) return;
    if (this.scratch === undefined) {
      try {
        this.scratch = { piece: createScratch(shape.scratch.service, shape.scratch.owner), ...shape.scratch };
      } catch {
        // A full or unwritable tmp: the launch will say so.
      }
    }
    if (this.cgroup === undefined && shape.cgroup !== undefined) {
      const cgroup = HelperCgroup.plan(shape.cgroup.support, shape.cgroup.label, shape.cgroup.limits);
      try {
        cgroup.makeDirs();
        this.cgroup = cgroup;
      } catch {
        this.removals.push(cgroup.remove().catch(() => undefined)); // a first directory made before the failure
      }
    }
    if (shape.compile !== undefined && this.scratch !== undefined) {
      // On the next turn: what waits on this teardown (stop() resolving, the next call) goes first.
      setImmediate(() => this.prepare()).unref();
    }
    if (this.holds) {
      holding.add(this);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', removeHeldAtExit);
      }
    }
  }

  /** Compiles the last launch's recipe for the held pieces (nothing when a launch took them meanwhile). */
  private prepare(): void {
    const shape = this.shape;
    const scratch = this.scratch;
    if (shape?.compile === undefined || scratch === undefined || (shape.cgroup !== undefined && this.cgroup === undefined)) return;
    this.prepared = PreparedCompile.make(shape.compile, scratch.piece, this.cgroup);
  }

  /** At process exit: removes what is held, synchronously and best effort (the next broker reaps what stays). */
  removeNow(): void {
    if (this.scratch !== undefined) rmSync(this.scratch.piece.path, { recursive: true, force: true });
    for (const dir of this.cgroup?.paths ?? []) {
      try {
        rmdirSync(dir);
        if (this.cgroup?.version === 1) rmdirSync(dirname(dir)); // the shared parent, when this was its last cgroup
      } catch {
        // busy (something joined it) or already gone
      }
    }
    this.scratch = undefined;
    this.cgroup = undefined;
    this.prepared = undefined;
    holding.delete(this);
  }

  /**
   * Removes what is held and forgets the last launch's shape until the next launch (the service closes or runs other
   * code). Settles once everything discarded so far is removed; rejects naming what stayed.
   */
  async release(): Promise<void> {
    this.shape = undefined;
    this.prepared = undefined;
    if (this.scratch !== undefined) this.removals.push(this.scratch.piece.remove());
    if (this.cgroup !== undefined) this.removals.push(this.cgroup.remove());
    this.scratch = undefined;
    this.cgroup = undefined;
    holding.delete(this);
    const removals = this.removals.splice(0);
    const failures = (await Promise.allSettled(removals)).flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (failures.length > 0) throw new Error(`launch reserve: ${failures.join('; ')}`);
  }
}

function sameOwner(a: ScratchOwner, b: ScratchOwner): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.uid === b.uid && a.gid === b.gid;
}

/** The scratch dir and its `tmp/` as createScratch left them: real directories, 0700, the owner's, `tmp/` alone in it and empty. */
function pristine(scratch: Scratch, owner: ScratchOwner): boolean {
  const uid = owner?.uid ?? process.getuid?.() ?? -1;
  try {
    for (const dir of [scratch.path, scratch.tmp]) {
      const st = lstatSync(dir);
      if (!st.isDirectory() || (st.mode & 0o7777) !== 0o700 || st.uid !== uid) return false;
    }
    const top = readdirSync(scratch.path);
    return top.length === 1 && top[0] === 'tmp' && readdirSync(scratch.tmp).length === 0;
  } catch {
    return false;
  }
}
