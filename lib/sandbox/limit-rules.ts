/**
 * A profile's resource limits, rule by rule: memory, processes and CPU are
 * limits of the whole helper, applied by its cgroup; where no cgroup can be
 * had, per-process rlimits (prlimit) stand in and the rule is reported as
 * unenforced, so a strict profile fails closed. CPU time, open files and file
 * size are rlimits; the scratch size is bubblewrap's capped tmpfs; V8's heap
 * is capped below the memory limit so the JS heap fails first, with a clear
 * message. {@link ./compile.ts} puts the results in the wrapper chain.
 * @module
 */
import { CGROUP_ENV, type CgroupLimits } from './cgroup.js';
import type { CompiledRule } from './compile.js';
import type { HostProbe } from './host-probe.js';
import type { SandboxProfile } from './profile.js';

/** Share of the memory limit given to V8's old space; the rest covers code, buffers and native memory, so V8 fails first, with a clear message. */
const V8_HEAP_SHARE = 0.5;

const MIB = 1024 * 1024;

/** What {@link planLimits} needs of the rest of the plan. */
export interface LimitsHost {
  /** Adds one rule to the report, in order. */
  add: (rule: CompiledRule) => void;
  /** What to install for bubblewrap, for a rule it would enforce. */
  bwrapMissing: string;
  /** The broker is root and drops the helper to the profile's uid (setpriv). */
  dropUser: boolean;
}

/** What the limits add to the launch. */
export interface LimitsPlan {
  /** prlimit's arguments (before its `--`); `--core=0:0` always. */
  prlimitArgs: string[];
  /** The limits the helper's cgroup applies; empty when none needs one. */
  cgroupLimits: CgroupLimits;
  /** V8's old-space cap in MiB (`--max-old-space-size`), when memory is limited. */
  heapMiB: number | undefined;
  /** Size of the scratch tmpfs in bytes, when bubblewrap can cap it. */
  scratchBytes: number | undefined;
}

/** Plans `profile`'s limits on this host, adding one rule per limit it sets (through `host.add`). */
export function planLimits(profile: SandboxProfile, probe: HostProbe, host: LimitsHost): LimitsPlan {
  const { add, bwrapMissing, dropUser } = host;
  const bwrap = probe.bwrap;

  // rlimits, set by prlimit when the host has it.
  const prlimitArgs: string[] = ['--core=0:0'];
  const limit = (rule: string, flag: string, value: number | undefined, extraLayers: string[], detail: string): void => {
    if (value === undefined) return;
    if (probe.prlimit !== null) {
      prlimitArgs.push(`--${flag}=${value}:${flag === 'cpu' ? value + 1 : value}`);
      add({ rule, layers: [`prlimit:${flag}`, ...extraLayers], unenforced: false, detail });
    } else {
      add({ rule, layers: extraLayers, unenforced: true, missing: 'prlimit (util-linux)', detail });
    }
  };

  const { memoryMiB, cpuSeconds, openFiles, processes, fileSizeMiB, scratchMiB, cpuPercent } = profile.limits;
  const heapMiB = memoryMiB === undefined ? undefined : Math.max(32, Math.floor(memoryMiB * V8_HEAP_SHARE));
  // Memory, processes and CPU are limits of the whole helper: its cgroup. rlimits are a per-process
  // fallback (never below what V8 reserves at start), reported as unenforced so a strict profile fails closed.
  const cg = probe.cgroup;
  const cgLayer = (controller: 'memory' | 'pids' | 'cpu'): string | null => (cg?.parents[controller] !== undefined && probe.sh !== null ? `cgroup-v${cg.version}:${controller}` : null);
  const cgMissing = (controller: string): string => `a per-helper cgroup ${controller} controller (${cg?.problem ?? 'no usable cgroup hierarchy'}; root on cgroup v1, or a delegated cgroup v2 subtree in ${CGROUP_ENV}: see docs/sandbox.md#cgroups)`;
  const cgroupLimits: CgroupLimits = {};

  if (memoryMiB !== undefined) {
    const heapDetail = `V8 heap capped at ${heapMiB} MiB so the JS heap fails first (helper aborts: "JavaScript heap out of memory")`;
    const layer = cgLayer('memory');
    if (layer !== null) {
      cgroupLimits.memoryMiB = memoryMiB;
      add({ rule: 'limits.memoryMiB', layers: [layer, 'v8:max-old-space-size'], unenforced: false, detail: `${memoryMiB} MiB for the whole helper (every process, heap, buffers, its scratch tmpfs), charged to its cgroup; past it the kernel's OOM killer ends the helper, reported as "memory limit"; ${heapDetail}` });
    } else {
      // RLIMIT_DATA counts the address space V8 reserves per isolate (≈ 576 MiB from Node 24 on), so
      // it is the limit plus that reserve; with workers each isolate adds one more: no rlimit then.
      const reserve = probe.node.isolateReserveMiB;
      const useData = probe.prlimit !== null && !(reserve > 0 && profile.processes.workers);
      const dataMiB = memoryMiB + reserve;
      if (useData) prlimitArgs.push(`--data=${dataMiB * MIB}:${dataMiB * MIB}`);
      add({
        rule: 'limits.memoryMiB',
        layers: [...(useData ? ['prlimit:data'] : []), 'v8:max-old-space-size'],
        unenforced: true,
        missing: cgMissing('memory'),
        detail: useData
          ? `fallback: RLIMIT_DATA ${dataMiB} MiB per process${reserve > 0 ? ` (${memoryMiB} MiB + the ${reserve} MiB node ${probe.node.major} reserves at start)` : ''}, so each child gets as much again; ${heapDetail}`
          : `fallback: node ${probe.node.major} reserves ${reserve} MiB of address space per worker, so no RLIMIT_DATA can hold a helper with workers without killing it; only the ${heapDetail}`,
      });
    }
  }

  limit('limits.cpuSeconds', 'cpu', cpuSeconds, [], `RLIMIT_CPU ${cpuSeconds} s: SIGXCPU, then SIGKILL a second later`);
  limit('limits.openFiles', 'nofile', openFiles, [], `RLIMIT_NOFILE ${openFiles}: open() fails with EMFILE`);

  if (processes !== undefined) {
    const layer = cgLayer('pids');
    if (layer !== null) {
      cgroupLimits.processes = processes;
      add({ rule: 'limits.processes', layers: [layer], unenforced: false, detail: `pids.max ${processes}: every process and thread of the helper together (node itself runs ~11 threads); past it fork/clone fail with EAGAIN` });
    } else {
      const useNproc = probe.prlimit !== null && !(probe.isRoot && !dropUser);
      if (useNproc) prlimitArgs.push(`--nproc=${processes}:${processes}`);
      add({ rule: 'limits.processes', layers: useNproc ? ['prlimit:nproc'] : [], unenforced: true, missing: cgMissing('pids'), detail: `fallback: RLIMIT_NPROC ${processes} counts every thread of every process of uid ${probe.isRoot ? profile.user.uid : probe.uid}, this helper's or not, and does not apply to root` });
    }
  }

  if (cpuPercent !== undefined) {
    const layer = cgLayer('cpu');
    if (layer !== null) {
      cgroupLimits.cpuPercent = cpuPercent;
      add({ rule: 'limits.cpuPercent', layers: [layer], unenforced: false, detail: `cpu.max: ${cpuPercent}% of one CPU for the whole helper, per 100 ms period; past it the kernel throttles it` });
    } else {
      add({ rule: 'limits.cpuPercent', layers: [], unenforced: true, missing: cgMissing('cpu'), detail: 'CPU bandwidth needs a cgroup' });
    }
  }

  limit('limits.fileSizeMiB', 'fsize', fileSizeMiB === undefined ? undefined : fileSizeMiB * MIB, [], `RLIMIT_FSIZE ${fileSizeMiB} MiB: SIGXFSZ`);
  const scratchBytes = scratchMiB !== undefined && bwrap !== null && probe.bwrapTmpfsSize ? scratchMiB * MIB : undefined;
  if (scratchMiB !== undefined) {
    const detail = `the scratch dir is a private tmpfs of ${scratchMiB} MiB: writes past it fail with ENOSPC (its files live in memory and vanish with the helper)`;
    if (scratchBytes !== undefined) add({ rule: 'limits.scratchMiB', layers: ['bubblewrap:tmpfs-size'], unenforced: false, detail });
    else add({ rule: 'limits.scratchMiB', layers: [], unenforced: true, missing: bwrap === null ? bwrapMissing : 'a bubblewrap with --size (0.8 or later)', detail });
  }

  return { prlimitArgs, cgroupLimits, heapMiB, scratchBytes };
}
