/**
 * DNS for a `network: "full"` helper behind pasta (docs/sandbox.md#dns).
 *
 * The helper's network namespace has a loopback of its own. pasta forwards
 * the ports bound on the host's 127.0.0.1 to the helper's (`-U auto`), so a
 * resolver at 127.0.0.1:53 (dnsmasq) answers there as on the host (tested).
 * A resolver on another loopback address (systemd-resolved's stub at
 * 127.0.0.53, NetworkManager's dnsmasq at 127.0.1.1) has no such path: pasta
 * forwards to 127.0.0.1 only, and passt 2023.03's `--dns-forward` with a
 * loopback resolver sends the query but does not translate the answer back
 * (measured). When the host's resolv.conf names one, the helper gets a
 * resolv.conf of its own, bound over /etc/resolv.conf by bubblewrap, in which
 * that nameserver is replaced by the upstream servers systemd-resolved itself
 * uses (/run/systemd/resolve/resolv.conf), as Docker does; when there are
 * none, it is left out and the report says so. Every other line stays.
 *
 * `BULKHEAD_RESOLV_CONF` and `BULKHEAD_RESOLV_UPSTREAM` name the files treated
 * as the host's resolv.conf and systemd-resolved's upstream list: tests point
 * them at a resolver they run, without touching the machine's own.
 * @module
 */
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The variable that names the resolv.conf treated as the host's. */
export const RESOLV_CONF_ENV = 'BULKHEAD_RESOLV_CONF';
/** The variable that names the file treated as systemd-resolved's upstream list. */
export const RESOLV_UPSTREAM_ENV = 'BULKHEAD_RESOLV_UPSTREAM';
/** Where systemd-resolved lists the upstream servers its stub (127.0.0.53) forwards to. */
export const SYSTEMD_RESOLVED_UPSTREAM = '/run/systemd/resolve/resolv.conf';

/** The helper's resolv.conf, when the host's needs changing. */
export interface ResolvPlan {
  /** The file's text. */
  content: string;
  /** What was done, for the report: e.g. "127.0.0.53 → 10.0.0.1 (the upstream servers in …)". */
  changes: string[];
  /** Loopback nameservers no path reaches (left out). */
  unreachable: string[];
}

const NAMESERVER = /^\s*nameserver\s+(\S+)/;

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1';
}

/** A loopback nameserver pasta does not reach: all but 127.0.0.1 (whose port 53 `-U auto` forwards). */
function stranded(address: string): boolean {
  return isLoopback(address) && address !== '127.0.0.1';
}

function nameservers(text: string): string[] {
  return text.split('\n').flatMap((line) => {
    const m = NAMESERVER.exec(line);
    return m === null ? [] : [m[1]!];
  });
}

/**
 * Rewrites a host resolv.conf for a helper behind pasta (pure).
 * @param hostText - the host's resolv.conf
 * @param upstreamText - systemd-resolved's upstream resolv.conf, or null
 * @returns the plan, or null when every nameserver is reachable from the helper's namespace (the host's file serves as is)
 */
export function planResolv(hostText: string, upstreamText: string | null): ResolvPlan | null {
  if (!nameservers(hostText).some(stranded)) return null;
  const upstream = upstreamText === null ? [] : nameservers(upstreamText).filter((a) => !isLoopback(a));
  const changes: string[] = [];
  const unreachable: string[] = [];
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const line of hostText.split('\n')) {
    const m = NAMESERVER.exec(line);
    if (m === null) {
      lines.push(line);
      continue;
    }
    const address = m[1]!;
    let replacement = [address];
    if (stranded(address)) {
      replacement = upstream;
      if (upstream.length > 0) changes.push(`${address} → ${upstream.join(', ')} (the upstream servers in ${SYSTEMD_RESOLVED_UPSTREAM})`);
      else unreachable.push(address);
    }
    for (const a of replacement) {
      if (seen.has(a)) continue;
      seen.add(a);
      lines.push(`nameserver ${a}`);
    }
  }
  return { content: `# written by bulkhead for a sandboxed helper (network "full" behind pasta)\n${lines.join('\n')}`, changes, unreachable };
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

let dir: string | undefined;
/** The files this broker wrote in `dir` (named by their content): each is written once. */
const written = new Set<string>();

/**
 * Plans the helper's resolv.conf for this host and writes it (once per content, 0644, in a
 * directory of this broker's own), for bubblewrap to bind over /etc/resolv.conf.
 * @returns the file to bind and the plan (null: the file is the host's, unchanged), or null when
 *   /etc/resolv.conf serves as is (or is unreadable)
 */
export function helperResolvConf(): { path: string; plan: ResolvPlan | null } | null {
  const override = process.env[RESOLV_CONF_ENV];
  const hostText = readOrNull(override ?? '/etc/resolv.conf');
  if (hostText === null) return null;
  const plan = planResolv(hostText, readOrNull(process.env[RESOLV_UPSTREAM_ENV] ?? SYSTEMD_RESOLVED_UPSTREAM));
  // Nothing to change: the host's file serves as is (the named one, when the variable names one).
  if (plan === null) return override === undefined ? null : { path: override, plan: null };
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'bulkhead-dns-'));
    dir = made;
    // The files are bind-mounted at launch, so removing them at exit harms no running helper.
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  const path = join(dir, `resolv-${createHash('sha256').update(plan.content).digest('hex').slice(0, 16)}.conf`);
  if (written.has(path)) return { path, plan };
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, plan.content);
  chmodSync(temp, 0o644);
  renameSync(temp, path);
  written.add(path);
  return { path, plan };
}
