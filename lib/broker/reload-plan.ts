/**
 * The difference between the services a broker runs and a new config: which
 * to remove, add, restart in place with their new manifest, update without a
 * restart (only `clients` changed: who may connect next is the daemon's
 * check at each handshake, and its re-check ends what the new list
 * withdraws; the helper has nothing to learn), or re-register (their protocol
 * changed, in the manifest or in its file, so their connections cannot carry
 * over). Pure: it
 * computes, the broker applies.
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
}

/**
 * Compares the registered services with the wanted ones.
 * @param current - manifests registered now, by name
 * @param protocols - the protocol each registered service serves, by name (its `protocol.hash` decides in place vs re-register)
 * @param wanted - the new config's services, by name
 */
export function planReload(
  current: ReadonlyMap<string, ServiceManifest>,
  protocols: ReadonlyMap<string, { protocol: { name: string; hash: string } }>,
  wanted: ReadonlyMap<string, PreparedService>,
): ReloadPlan {
  const plan: ReloadPlan = { removed: [], added: [], replaced: [], updated: [], reregistered: [] };
  for (const [name, manifest] of current) {
    const next = wanted.get(name);
    if (next === undefined) {
      plan.removed.push(name);
      continue;
    }
    const running = protocols.get(name)?.protocol;
    const sameProtocol = running !== undefined && running.name === next.resolved.protocol.name && running.hash === next.resolved.protocol.hash;
    if (!sameProtocol) plan.reregistered.push(name);
    else if (JSON.stringify(next.resolved.manifest) !== JSON.stringify(manifest)) {
      (sameBut('clients', next.resolved.manifest, manifest) ? plan.updated : plan.replaced).push(name);
    }
  }
  for (const name of wanted.keys()) if (!current.has(name)) plan.added.push(name);
  for (const list of [plan.removed, plan.added, plan.replaced, plan.updated, plan.reregistered]) list.sort();
  return plan;
}

/** True when two manifests differ in nothing but `key`. */
function sameBut(key: keyof ServiceManifest, a: ServiceManifest, b: ServiceManifest): boolean {
  const rest = (m: ServiceManifest): string => JSON.stringify({ ...m, [key]: undefined });
  return rest(a) === rest(b);
}
