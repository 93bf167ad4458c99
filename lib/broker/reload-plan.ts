/**
 * The difference between the services a broker runs and a new config: which
 * to remove, add, restart in place with their new manifest, update without a
 * restart (only `clients` changed: who may connect next is the daemon's
 * check at each handshake, and its re-check ends what the new list
 * withdraws; the helper has nothing to learn), or re-register (their protocol
 * changed, in the manifest or in its file, so their connections cannot carry
 * over). A service whose sandbox profile file was edited under the same name
 * counts as changed even when its manifest is not: the resolved profile
 * documents are compared by content (parsed JSON, keys in any order), not by
 * mtime. Pure: it computes, the broker applies.
 * @module
 */
import type { ServiceManifest } from './manifest.js';
import type { ResolvedService } from './supervisor-types.js';

/** A manifest checked and resolved, ready to register. */
export interface PreparedService {
  resolved: ResolvedService;
  /** For messages (config file and JSON pointer). */
  source: string;
}

/** What a reload does, by service name (each list sorted). */
export interface ReloadPlan {
  removed: string[];
  added: string[];
  /** Same protocol, other manifest: updated and restarted without downtime. */
  replaced: string[];
  /** Only `clients` changed: the manifest is updated, the running helper kept. */
  updated: string[];
  /** Other protocol (name or schema): unregistered and registered again. */
  reregistered: string[];
  /** Whose profile document differs from the one the service runs under (an edit in place); each is in `replaced` or `reregistered` too. */
  editedProfiles: string[];
}

/** What the plan reads of a registered service: the protocol and profile its current manifest resolved to. */
export interface RunningService {
  readonly resolvedService: Pick<ResolvedService, 'protocol' | 'profile'>;
}

/**
 * Compares the registered services with the wanted ones.
 * @param current - manifests registered now, by name
 * @param running - each registered service's resolved protocol (its `hash` decides in place vs re-register) and profile document, by name
 * @param wanted - the new config's services, by name
 */
export function planReload(
  current: ReadonlyMap<string, ServiceManifest>,
  running: ReadonlyMap<string, RunningService>,
  wanted: ReadonlyMap<string, PreparedService>,
): ReloadPlan {
  const plan: ReloadPlan = { removed: [], added: [], replaced: [], updated: [], reregistered: [], editedProfiles: [] };
  for (const [name, manifest] of current) {
    const next = wanted.get(name);
    if (next === undefined) {
      plan.removed.push(name);
      continue;
    }
    const now = running.get(name)?.resolvedService;
    const sameProtocol = now !== undefined && now.protocol.name === next.resolved.protocol.name && now.protocol.hash === next.resolved.protocol.hash;
    // Same name, other content: the operator edited the file; the helper must run under what it says now.
    const profileEdited = now !== undefined && manifest.sandbox === next.resolved.manifest.sandbox && !sameProfile(now.profile, next.resolved.profile);
    if (profileEdited) plan.editedProfiles.push(name);
    if (!sameProtocol) plan.reregistered.push(name);
    else if (profileEdited) plan.replaced.push(name);
    else if (JSON.stringify(next.resolved.manifest) !== JSON.stringify(manifest)) {
      (sameBut('clients', next.resolved.manifest, manifest) ? plan.updated : plan.replaced).push(name);
    }
  }
  for (const name of wanted.keys()) if (!current.has(name)) plan.added.push(name);
  for (const list of [plan.removed, plan.added, plan.replaced, plan.updated, plan.reregistered, plan.editedProfiles]) list.sort();
  return plan;
}

/** True when two resolved profiles say the same (both absent, or the same name and document, whatever the key order). */
function sameProfile(a: ResolvedService['profile'], b: ResolvedService['profile']): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.name === b.name && canonical(a.document) === canonical(b.document);
}

/** JSON with every object's keys sorted: a reordered or reformatted profile file is the same profile. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
    : v));
}

/** True when two manifests differ in nothing but `key`. */
function sameBut(key: keyof ServiceManifest, a: ServiceManifest, b: ServiceManifest): boolean {
  const rest = (m: ServiceManifest): string => JSON.stringify({ ...m, [key]: undefined });
  return rest(a) === rest(b);
}
