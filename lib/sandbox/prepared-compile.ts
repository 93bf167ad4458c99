/**
 * A sandboxed launch's compile made ahead, off the launch's path: once a
 * service's launch reserve holds the next launch's scratch dir and cgroup
 * (lib/sandbox/launch-reserve.ts), it compiles the last launch's profile and
 * input for those pieces; the next launch takes that compile instead of making
 * its own (0.5–0.9 ms of the broker's CPU between the call and the spawn).
 *
 * The compile made ahead is used only when it is the one the launch would
 * make: `compileProfile` is a pure function of the profile, the host probe,
 * its input and what it asks the host (the real path of every path it binds
 * or grants, the resolv.conf a `full` helper gets: lib/sandbox/fs-answers.ts).
 * At the launch the profile, the probe (the same object), the whole input (the
 * module read set, the scratch dir's path among it) must be equal, every
 * question asked again must get the same answer, and the cgroup the launch
 * takes must be the one it was made for. Else the launch compiles as before.
 * One launch per compile, as per piece: it is forgotten once taken.
 * @module
 */
import type { CgroupLimits } from './cgroup.js';
import { compileProfile, type CompileInput, type CompiledLaunch } from './compile.js';
import { answersHold, recordingAnswers, type FsAnswers } from './fs-answers.js';
import type { HostProbe } from './host-probe.js';
import type { SandboxProfile } from './profile.js';

/** A launch's compile, but for its scratch dir and cgroup: what the next one is compiled from. */
export interface CompileRecipe {
  profile: SandboxProfile;
  probe: HostProbe;
  input: Omit<CompileInput, 'scratch' | 'scratchTmp' | 'cgroupFor'>;
}

/**
 * Every field of {@link CompileInput} the compile reads, in a fixed order: a field added to CompileInput fails the
 * type check until it is listed here (or is a function, like `cgroupFor`, which the launch answers itself).
 */
const KEYED = { service: 0, nodePath: 1, nodeArgs: 2, entry: 3, reads: 4, writes: 5, scratch: 6, scratchTmp: 7, compileCache: 8, brokerCaches: 9, mmHolder: 10 } as const satisfies Record<Exclude<keyof CompileInput, 'cgroupFor'>, number>;
const KEYED_FIELDS = Object.keys(KEYED) as Array<keyof typeof KEYED>;

function keyOf(profile: SandboxProfile, input: CompileInput): string {
  return JSON.stringify([profile, ...KEYED_FIELDS.map((field) => input[field] ?? null)]);
}

function sameLimits(a: CgroupLimits, b: CgroupLimits): boolean {
  return a.memoryMiB === b.memoryMiB && a.processes === b.processes && a.cpuPercent === b.cpuPercent;
}

/** One compile made ahead for a given scratch dir and cgroup (see the module comment). */
export class PreparedCompile {
  private constructor(
    private readonly key: string,
    private readonly probe: HostProbe,
    private readonly answers: FsAnswers,
    private readonly compiled: CompiledLaunch,
    private readonly cgroupProcs: readonly string[] | undefined,
  ) {}

  /**
   * Compiles `recipe` for `scratch` and `cgroup` (made ahead, not yet taken), recording what it asked the host.
   * Undefined when the compile throws, or needs a cgroup with other limits than `cgroup`'s (or none was made).
   */
  static make(recipe: CompileRecipe, scratch: { path: string; tmp: string }, cgroup: { procsFiles: readonly string[]; limits: CgroupLimits } | undefined): PreparedCompile | undefined {
    const asked = { fits: true }; // set by cgroupFor, called inside the compile
    const input: CompileInput = {
      ...recipe.input,
      scratch: scratch.path,
      scratchTmp: scratch.tmp,
      cgroupFor: (limits) => {
        asked.fits = cgroup !== undefined && sameLimits(limits, cgroup.limits);
        return cgroup?.procsFiles ?? [];
      },
    };
    try {
      const { value, answers } = recordingAnswers(() => compileProfile(recipe.profile, recipe.probe, input));
      if (!asked.fits) return undefined;
      return new PreparedCompile(keyOf(recipe.profile, input), recipe.probe, answers, value, value.cgroupLimits === undefined ? undefined : cgroup?.procsFiles);
    } catch {
      return undefined; // the launch compiles and reports it
    }
  }

  /**
   * This compile, when it is what `compileProfile(profile, probe, input)` would return now; else undefined. Asks
   * `input.cgroupFor` for the launch's cgroup (as the compile would) only once everything else matched.
   */
  take(profile: SandboxProfile, probe: HostProbe, input: CompileInput): CompiledLaunch | undefined {
    if (probe !== this.probe || keyOf(profile, input) !== this.key || !answersHold(this.answers)) return undefined;
    const limits = this.compiled.cgroupLimits;
    if (limits !== undefined) {
      const procs = input.cgroupFor(limits);
      const made = this.cgroupProcs ?? [];
      if (procs.length !== made.length || procs.some((file, i) => file !== made[i])) return undefined;
    }
    return this.compiled;
  }
}
