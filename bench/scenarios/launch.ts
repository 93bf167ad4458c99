/**
 * Launch costs, per shipped sandbox profile and unsandboxed:
 * - probe: spawn → first byte on fd 3 from a one-line node script, launched
 *   exactly as the broker would launch the helper (same planLaunch wrappers,
 *   binds, env, cwd). This is "bare node start + sandbox layers". Unsandboxed,
 *   it is bare node: the helper's parent-death stage (native, else setpriv) is charged to
 *   bulkhead (a probe under it is printed beside, not judged).
 * - cold: an on-demand launch, from `connection.call()` to its reply (the
 *   helper was stopped before; not timed): planning, spawn, the helper's
 *   start-up, hello, lazy schema compile, the call itself.
 * - relaunch: SIGKILL the running helper, call again at once (retrying the
 *   ERR_INTERRUPTED the first call may get) until the new helper replies; by
 *   round, alternating: a crash (SIGKILL to the helper's node from outside the
 *   broker, which learns it from the EOF) and `broker.kill` (the broker knows
 *   the death at once).
 * - with `launch.prewarm` (when this build of bulkhead has it): the same cold
 *   and relaunch figures with a spare helper waiting. The rounds that only add
 *   cold-launch pairs also add a crash relaunch of each prewarmed variant: the
 *   relaunch target is judged on ~28 crashes with a ~95% interval of their median.
 * Variants are interleaved round by round. The cold-launch target is judged on pairs: each round, the
 * helper is stopped, then its probe and its cold launch run back to back (the order alternating between
 * rounds), and the "over" is the median of the per-pair differences, printed with its spread and a ~95%
 * interval (bench/common/paired.ts). A difference of two medians taken over the whole run is printed beside
 * it (the method before round eight).
 * @module
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { Broker, SERVICE_MANIFEST_SCHEMA, isBulkheadError, type Connection, type ServiceManifest } from 'bulkhead';
import { runtimeReadPaths } from '../../lib/broker/package-paths.js';
import { withParentDeathSignal } from '../../lib/broker/parent-death.js';
import { planLaunch, type SandboxLaunchInput } from '../../lib/sandbox/index.js';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CONFIG } from '../common/config.js';
import { nodePidOf, privateOf, processTree, rssOf, schedCpuMsOf } from '../common/proc.js';
import { isMmHolder } from '../../lib/broker/sandboxed-mm-holder.js';
import { FIXTURES, fmt, heading, machine, printTable, writeResult, type ScenarioResult, type TargetRow } from '../common/report.js';
import { median, spread, type Spread } from '../common/stats.js';
import { medianInterval, pairedDifferences, type PairedSummary } from '../common/paired.js';
import { BENCH_LAUNCH, BENCH_MAX_FRAME_BYTES, MESSAGE } from '../common/transports.js';

const NAME = 'launch';
const SHIPPED = new URL('../../../sandbox-profiles/', import.meta.url);
/** Unsandboxed and every profile bulkhead ships (sandbox-profiles/*.json). */
const PROFILES: readonly string[] = ['none', ...readdirSync(SHIPPED).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort()];
type Profile = string;
const PREWARM_PROFILES = ['none', 'pure-compute'] as const;
const PROTOCOL_FILE = `${FIXTURES}protocols/com.bench.echo.json`;

// A full collection of the bench's own heap (the broker's process) before each probe/cold pair: in a 16-pair run
// (round fourteen, Node 24, load 1) 4 of the unsandboxed row's 33 probes and 2 of its 16 cold launches had a 4–14 ms
// GC of this process inside their window: noise on both sides of a pair, not a launch cost. Not before the ms-scale
// prewarmed launches and relaunches: a full GC right before them slowed them (see relaunch()).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** True when this build's manifest schema has `launch.prewarm`. */
export function hasPrewarm(): boolean {
  const launch = (SERVICE_MANIFEST_SCHEMA.properties as Record<string, { properties?: Record<string, unknown> }>)['launch'];
  return launch?.properties?.['prewarm'] !== undefined;
}

/** spawn → first byte on fd 3, launched the way the broker launches a helper under `profile`. */
async function probe(profile: Profile, parentDeathWrapper = false): Promise<{ ms: number; planMs: number; cpuMs: number }> {
  const input: SandboxLaunchInput = {
    service: `probe-${profile}`,
    entry: `${FIXTURES}first-byte.js`,
    serviceDir: FIXTURES.replace(/\/$/, ''),
    implicitReads: [...runtimeReadPaths(), PROTOCOL_FILE],
    nodePath: process.execPath,
    nodeArgs: [],
    env: {},
    profile: profile === 'none' ? undefined : { name: profile, document: JSON.parse(readFileSync(new URL(`${profile}.json`, SHIPPED), 'utf8')) as unknown },
    paths: { root: FIXTURES.replace(/\/$/, ''), data: FIXTURES.replace(/\/$/, '') },
  };
  const planStart = performance.now();
  // The target's probe is bare node plus the sandbox's wrappers. The broker starts an unsandboxed helper
  // through its parent-death stage (the native one, else `setpriv --pdeathsig KILL`; it dies with its broker; a sandboxed one has bubblewrap's
  // --die-with-parent, which the sandboxed probe has): that exec is bulkhead's cost and stays charged to
  // it. `parentDeathWrapper` measures the probe under it too, printed beside the target, not judged.
  const planned = await planLaunch(input);
  const plan = parentDeathWrapper ? withParentDeathSignal(planned) : planned;
  const planMs = performance.now() - planStart;
  try {
    let cpuMs = Number.NaN;
    const ms = await new Promise<number>((resolve, reject) => {
      const start = performance.now();
      // fds 5, ...: what the sandbox hands its wrappers (bubblewrap's seccomp program), as the broker passes them.
      const extra = plan.inheritFds ?? [];
      const child = spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: extra.length > 0 ? ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...extra] : ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
      const fd3 = child.stdio[3] as Socket;
      let elapsed: number | undefined;
      fd3.once('data', () => {
        elapsed = performance.now() - start;
        // node's CPU up to its first byte (read after the clock stopped; the diagnostic beside the target).
        if (child.pid !== undefined) cpuMs = schedCpuMsOf(nodePidOf(child.pid));
        fd3.end();
      });
      fd3.on('error', () => {});
      child.once('exit', (code) => (elapsed !== undefined ? resolve(elapsed) : reject(new Error(`probe under ${profile} exited ${code} before its first byte: ${stderr.slice(0, 500)}`))));
    });
    return { ms, planMs, cpuMs };
  } finally {
    await plan.cleanup();
  }
}

interface Service {
  profile: Profile;
  prewarm: boolean;
  name: string;
  connection: Connection;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function sparePid(broker: Broker, name: string): number | null {
  return (broker.status(name) as { sparePid?: number | null }).sparePid ?? null;
}

/** When prewarm is on, wait until a spare is waiting (what a user's next launch would find after an idle moment). */
async function spareReady(broker: Broker, s: Service): Promise<void> {
  if (s.prewarm) await waitFor(`a prewarmed spare of ${s.name}`, () => sparePid(broker, s.name) !== null);
}

/**
 * Waits until every prewarmed service has its spare: a spare starts ~50 ms after each launch of its
 * service, and one starting while another variant is timed would charge its start-up to that variant.
 */
async function quiet(broker: Broker, all: readonly Service[]): Promise<void> {
  for (const x of all) await spareReady(broker, x);
}

async function cold(broker: Broker, s: Service, all: readonly Service[], stopped = false): Promise<{ ms: number; rss: number; cpuMs: number }> {
  if (!stopped) await broker.stop(s.name);
  await quiet(broker, all);
  const launches = broker.status(s.name).launches;
  const start = performance.now();
  await s.connection.call('echo', MESSAGE);
  const ms = performance.now() - start;
  const status = broker.status(s.name);
  if (status.launches === launches && !s.prewarm) throw new Error(`${s.name}: the call did not launch the helper`);
  // The node process itself (sandbox wrappers add a little; see spare RSS for a whole tree), and its CPU up to the reply.
  const node = nodePidOf(status.pid!);
  return { ms, rss: rssOf(node), cpuMs: schedCpuMsOf(node) };
}

/** How the helper dies: `broker.kill`, or a crash (SIGKILL to its node from outside the broker). */
type KillBy = 'broker' | 'crash';

async function relaunch(broker: Broker, s: Service, all: readonly Service[], by: KillBy): Promise<{ ms: number; exitMs: number; retries: number; stale: number }> {
  // No collectGarbage() here: a full GC right before the kill made the relaunch after it slower (Node 24, 24 crashes
  // per run, two runs each: `pure-compute` 3.1 / 3.2 ms with it, 2.4 / 2.2 without, 1.9 / 2.2 on the build before round
  // fourteen; unsandboxed 2.7 / 2.3 → 1.7 / 1.8): the bench's GC and its aftermath, not the relaunch's own work.
  await quiet(broker, all);
  const pid = broker.status(s.name).pid;
  // Found before the clock starts: a crash of node itself (under a sandbox, inside its wrappers).
  const node = by === 'crash' ? nodePidOf(pid!) : undefined;
  let exitMs = Number.NaN;
  let exited: () => void = () => undefined;
  // After a takeover the reply may come before the old helper's exit event: the run waits for both (untimed).
  const exit = new Promise<void>((resolve) => { exited = resolve; });
  const start = performance.now();
  const sub = broker.on('exit', (service) => {
    if (service !== s.name || !Number.isNaN(exitMs)) return;
    exitMs = performance.now() - start;
    exited();
  });
  try {
    if (node === undefined) broker.kill(s.name, 'SIGKILL');
    else process.kill(node, 'SIGKILL');
    let retries = 0;
    // Replies from the killed helper: under bubblewrap the signal reaches the
    // outer wrapper's process group, and node (in the sandbox's own pid
    // namespace) may answer once more before it dies with it.
    let stale = 0;
    let ms: number;
    for (;;) {
      if (retries + stale > 1000) throw new Error(`${s.name}: no reply from a new helper after ${retries} interrupted calls and ${stale} replies from the old one`);
      try {
        await s.connection.call('echo', MESSAGE);
        // The clock stops at the reply: status() reads /proc (0.2-0.3 ms), which is the bench's check, not the relaunch.
        ms = performance.now() - start;
        if (broker.status(s.name).pid !== pid) break;
        stale++;
      } catch (err) {
        if (!isBulkheadError(err) || err.code !== 'ERR_INTERRUPTED') throw err;
        retries++;
      }
    }
    await exit;
    return { ms, exitMs, retries, stale };
  } finally {
    sub.dispose();
  }
}

/** A signed figure in ms (`+3.2`, `-0.4`). */
function sign(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${fmt(ms)}`;
}

/** Runs the scenario. */
export async function runLaunch(): Promise<ScenarioResult> {
  const start = machine();
  const prewarm = hasPrewarm();
  const pairRounds = Math.max(CONFIG.launches, CONFIG.launchPairs);
  heading(`launch: ${pairRounds} cold launches per profile, each paired with its probe; ${CONFIG.launches} relaunches and prewarmed launches per variant, and ${pairRounds - CONFIG.launches} more crash relaunches per prewarmed variant; profiles ${PROFILES.join(', ')}; prewarm ${prewarm ? 'available' : 'not in this build'}`);
  const broker = new Broker({ root: FIXTURES, maxFrameBytes: BENCH_MAX_FRAME_BYTES });
  try {
    const services: Service[] = [];
    for (const withSpare of prewarm ? [false, true] : [false]) {
      // Prewarm is measured unsandboxed and in the strictest profile: enough to see what it buys, at half the time.
      for (const profile of withSpare ? PREWARM_PROFILES : PROFILES) {
        const name = `echo-${profile}${withSpare ? '-prewarm' : ''}`;
        const manifest: ServiceManifest = {
          name,
          entry: './echo-service.js',
          protocol: 'com.bench.echo',
          launch: { ...BENCH_LAUNCH, ...(withSpare ? { prewarm: true } : {}) } as ServiceManifest['launch'],
          ...(profile === 'none' ? {} : { sandbox: profile }),
          ...(profile === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}),
        };
        broker.register(manifest);
        services.push({ profile, prewarm: withSpare, name, connection: broker.connect(name) });
      }
    }
    // Warm-up: one launch of everything (host probe, page cache), and one probe per profile.
    for (const s of services) await s.connection.call('echo', MESSAGE);
    for (const p of PROFILES) await probe(p);

    const probeMs = new Map<Profile, number[]>(PROFILES.map((p) => [p, []]));
    const wrappedProbeMs: number[] = [];
    const planMs = new Map<Profile, number[]>(PROFILES.map((p) => [p, []]));
    // node's CPU to its first byte (probe) / first reply (helper), per pair: load-insensitive, printed beside the target.
    const probeCpuMs = new Map<Profile, number[]>(PROFILES.map((p) => [p, []]));
    const coldCpuMs = new Map<Profile, number[]>(PROFILES.map((p) => [p, []]));
    const coldMs = new Map<Service, number[]>(services.map((s) => [s, []]));
    const rss = new Map<Service, number[]>(services.map((s) => [s, []]));
    // Per kind of kill (KillBy): the relaunch figures of each service.
    const perKill = () => new Map<Service, number[]>(services.map((s) => [s, []]));
    const relaunchMs = { broker: perKill(), crash: perKill() };
    const exitMs = { broker: perKill(), crash: perKill() };
    const retries = { broker: perKill(), crash: perKill() };
    const stale = { broker: perKill(), crash: perKill() };
    for (let round = 0; round < pairRounds; round++) {
      const rot = <T>(xs: readonly T[]) => xs.map((_, i) => xs[(i + round) % xs.length]!);
      // Rounds past CONFIG.launches only add pairs (no relaunch, no prewarm): the target's sample grows, the run stays short.
      const full = round < CONFIG.launches;
      const record = (s: Service, by: KillBy, r: Awaited<ReturnType<typeof relaunch>>) => {
        relaunchMs[by].get(s)!.push(r.ms);
        exitMs[by].get(s)!.push(r.exitMs);
        retries[by].get(s)!.push(r.retries);
        stale[by].get(s)!.push(r.stale);
      };
      for (const s of rot(services)) {
        // Rounds past CONFIG.launches: a prewarmed variant adds one crash relaunch (no cold launch), so that the
        // relaunch target's median is taken over launches/2 + the extra rounds' crashes (28 by default), not 6.
        if (s.prewarm && !full) {
          record(s, 'crash', await relaunch(broker, s, services, 'crash'));
          continue;
        }
        let c: { ms: number; rss: number; cpuMs: number };
        if (s.prewarm) c = await cold(broker, s, services);
        else {
          // A pair: the helper stopped (untimed, its teardown awaited), then probe and cold launch back to back on the
          // same machine state, the order alternating by round so neither always goes first.
          const p = s.profile;
          await broker.stop(s.name);
          collectGarbage();
          const probeFirst = (round + PROFILES.indexOf(p)) % 2 === 0;
          const measureProbe = async () => {
            const r = await probe(p);
            probeMs.get(p)!.push(r.ms);
            planMs.get(p)!.push(r.planMs);
            probeCpuMs.get(p)!.push(r.cpuMs);
          };
          if (probeFirst) await measureProbe();
          c = await cold(broker, s, services, true);
          if (!probeFirst) await measureProbe();
          coldCpuMs.get(p)!.push(c.cpuMs);
          if (p === 'none') wrappedProbeMs.push((await probe(p, true)).ms);
        }
        coldMs.get(s)!.push(c.ms);
        rss.get(s)!.push(c.rss);
        if (!full) continue;
        // One kind of kill per round, alternating (the scenario's run time stays that of one relaunch per round).
        const by: KillBy = round % 2 === 0 ? 'crash' : 'broker';
        record(s, by, await relaunch(broker, s, services, by));
      }
      process.stdout.write(`  round ${round + 1}/${pairRounds} done\n`);
    }
    const spareRss: Record<string, number> = {};
    const sparePrivate: Record<string, number> = {};
    if (prewarm) {
      for (const s of services.filter((x) => x.prewarm)) {
        await spareReady(broker, s);
        const pid = sparePid(broker, s.name)!;
        // A sandboxed spare is wrappers around node: wait until node is there to count it too.
        if (s.profile !== 'none') await waitFor(`node inside the spare of ${s.name}`, () => nodePidOf(pid) !== pid);
        // Not a sandboxed node's mm holder: it shares node's memory, which its /proc figures count again.
        const tree = processTree(pid).filter((p) => !isMmHolder(p));
        spareRss[s.name] = tree.reduce((sum, p) => sum + rssOf(p), 0);
        sparePrivate[s.name] = tree.reduce((sum, p) => sum + privateOf(p), 0);
      }
    }

    const summary: Record<string, { probeMs: Spread; planMs: Spread; variants: Record<string, { coldMs: Spread; relaunchMs: Spread; killToExitEventMs: Spread; retries: Spread; staleReplies: Spread; crash: { relaunchMs: Spread; relaunchMedianInterval: { low: number; high: number }; killToExitEventMs: Spread; retries: Spread; staleReplies: Spread }; helperRssMiB: Spread; overProbeMs: number; overProbePaired?: PairedSummary; overProbeMediansMs?: number; nodeCpuOverProbe?: PairedSummary; spareRssMiB?: number; sparePrivateMiB?: number }> }> = {};
    const rows: string[][] = [];
    const targets: TargetRow[] = [];
    for (const p of PROFILES) {
      const pm = spread(probeMs.get(p)!);
      summary[p] = { probeMs: pm, planMs: spread(planMs.get(p)!), variants: {} };
      for (const s of services.filter((x) => x.profile === p)) {
        const c = spread(coldMs.get(s)!);
        const r = spread(relaunchMs.broker.get(s)!);
        const rc = spread(relaunchMs.crash.get(s)!);
        // The target: the median of the per-pair differences (cold − its probe). Prewarmed variants have no pairs.
        const paired = s.prewarm ? undefined : pairedDifferences(probeMs.get(p)!, coldMs.get(s)!);
        const mediansOver = c.median - pm.median;
        const cpuOver = s.prewarm ? undefined : pairedDifferences(probeCpuMs.get(p)!, coldCpuMs.get(p)!);
        const over = paired?.median ?? mediansOver;
        const v = {
          coldMs: c,
          relaunchMs: r,
          killToExitEventMs: spread(exitMs.broker.get(s)!),
          retries: spread(retries.broker.get(s)!),
          staleReplies: spread(stale.broker.get(s)!),
          crash: { relaunchMs: rc, relaunchMedianInterval: medianInterval(rc.values), killToExitEventMs: spread(exitMs.crash.get(s)!), retries: spread(retries.crash.get(s)!), staleReplies: spread(stale.crash.get(s)!) },
          helperRssMiB: spread(rss.get(s)!.map((b) => b / 2 ** 20)),
          overProbeMs: over,
          ...(paired === undefined ? {} : { overProbePaired: paired, overProbeMediansMs: mediansOver }),
          ...(cpuOver === undefined ? {} : { nodeCpuOverProbe: cpuOver }),
          ...(s.prewarm ? { spareRssMiB: (spareRss[s.name] ?? Number.NaN) / 2 ** 20, sparePrivateMiB: (sparePrivate[s.name] ?? Number.NaN) / 2 ** 20 } : {}),
        };
        summary[p].variants[s.prewarm ? 'prewarm' : 'plain'] = v;
        rows.push([
          `${p}${s.prewarm ? ' + prewarm' : ''}`,
          `${fmt(pm.median)} [${fmt(pm.min)}–${fmt(pm.max)}]`,
          `${fmt(c.median)} [${fmt(c.min)}–${fmt(c.max)}]`,
          paired === undefined ? sign(over) : `${sign(over)} [${sign(paired.p25)}…${sign(paired.p75)}]`,
          paired === undefined ? '' : `${sign(paired.ciLow)}…${sign(paired.ciHigh)}`,
          paired === undefined ? '' : sign(mediansOver),
          cpuOver === undefined ? '' : sign(cpuOver.median),
          `${fmt(r.median)} [${fmt(r.min)}–${fmt(r.max)}]`,
          fmt(v.killToExitEventMs.median),
          `${fmt(rc.median)} [${fmt(rc.min)}–${fmt(rc.max)}]`,
          fmt(v.crash.killToExitEventMs.median),
          fmt(v.helperRssMiB.median, 0),
          s.prewarm ? `${fmt(v.spareRssMiB ?? Number.NaN, 0)} (${fmt(v.sparePrivateMiB ?? Number.NaN, 0)} private)` : '',
        ]);
        if (!s.prewarm) {
          targets.push({
            scenario: NAME,
            target: `cold launch → first reply ≤ bare node + sandbox + 10 ms (${p === 'none' ? 'unsandboxed' : p})`,
            measured: `${sign(over)} ms (median of ${paired!.n} paired differences, ~95% interval ${sign(paired!.ciLow)}…${sign(paired!.ciHigh)}${paired!.ciLow <= 10 && paired!.ciHigh > 10 ? ', which holds 10: not decisive' : ''}; node CPU ${sign(cpuOver!.median)}; cold ${fmt(c.median)} vs probe ${fmt(pm.median)} ms${p === 'none' ? `; over a probe under the parent-death wrapper: ${sign(pairedDifferences(wrappedProbeMs, coldMs.get(s)!).median)}` : ''}; load ${loadavg()[0]!.toFixed(1)})`,
            met: over <= 10,
          });
        }
      }
    }
    // Prewarm targets: launch ≤ 3 ms and relaunch after SIGKILL ≤ 5 ms p50.
    const byProfile = (pw: boolean, p: Profile) => services.find((s) => s.prewarm === pw && s.profile === p)!;
    for (const p of ['none', 'pure-compute'] as const) {
      const s = prewarm ? byProfile(true, p) : byProfile(false, p);
      const c = median(coldMs.get(s)!);
      const r = median(relaunchMs.broker.get(s)!);
      const rc = median(relaunchMs.crash.get(s)!);
      const crashes = relaunchMs.crash.get(s)!.length;
      // The median's distribution-free ~95% interval: with 6 crashes it is their min–max, which decides nothing.
      const ci = medianInterval(relaunchMs.crash.get(s)!);
      const variant = summary[p]!.variants[prewarm ? 'prewarm' : 'plain']!;
      const tag = p === 'none' ? 'unsandboxed' : p;
      targets.push({
        scenario: NAME,
        target: `prewarm: on-demand launch → first reply ≤ 3 ms p50 (${tag})`,
        measured: prewarm ? `${fmt(c)} ms (spare ${fmt(summary[p]!.variants['prewarm']!.spareRssMiB ?? Number.NaN, 0)} MiB RSS, ${fmt(summary[p]!.variants['prewarm']!.sparePrivateMiB ?? Number.NaN, 0)} MiB private)` : `no prewarm in this build; without it ${fmt(c)} ms`,
        met: prewarm ? c <= 3 : false,
      });
      targets.push({
        scenario: NAME,
        // Judged on the crash (an outside SIGKILL the broker learns from the EOF), the harder case; broker.kill beside it.
        target: `prewarm: relaunch after SIGKILL → first reply ≤ 5 ms p50 (${tag})`,
        measured: prewarm
          ? `crash ${fmt(rc)} ms (median of ${crashes}${Number.isNaN(ci.low) ? '' : `, ~95% interval ${fmt(ci.low)}…${fmt(ci.high)}${ci.low <= 5 && ci.high > 5 ? ', which holds 5: not decisive' : ''}`}; kill → exit event ${fmt(variant.crash.killToExitEventMs.median)} ms); broker.kill ${fmt(r)} ms (→ exit event ${fmt(variant.killToExitEventMs.median)} ms)`
          : `no prewarm in this build; without it crash ${fmt(rc)} ms, broker.kill ${fmt(r)} ms`,
        met: prewarm ? rc <= 5 : false,
      });
    }
    printTable(['variant', 'probe ms (node+sandbox)', 'cold → reply ms', 'over probe: paired median [p25…p75]', '~95% interval', 'medians\' difference', 'node CPU over probe', 'relaunch (broker kill) ms', 'kill→exit evt', 'relaunch (crash: external SIGKILL) ms', 'crash→exit evt', 'helper RSS MiB', 'spare MiB RSS'], rows);
    console.log(`  medians [min–max] of the launches; over probe = median of the ${pairRounds} per-pair differences (helper stopped, then probe and cold launch back to back, order alternating), its quartiles and a distribution-free ~95% interval of that median; medians' difference = median cold − median probe (the method before round eight, not judged); node CPU over probe = median of the paired differences of node's own CPU up to its first reply / first byte (not judged: it does not move with the machine's load, so it shows whether the helper's cost changed when the wall figures cannot)`);
    console.log('  probe = spawn → first byte of a one-line script under the same wrappers; relaunch = SIGKILL → first reply of the new helper (throttleMs 0): broker.kill, or a crash (SIGKILL to node from outside).');
    writeResult(NAME, start, { prewarmAvailable: prewarm, summary });
    return { name: NAME, data: { summary }, targets };
  } finally {
    await broker.close();
  }
}
