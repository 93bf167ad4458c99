/**
 * From a manifest to everything a launch needs, checked and changing
 * nothing: the entry file, the protocol, the sandbox profile (the app's own
 * or a shipped one), the launch policy and its watched paths. register(),
 * reload() and checkConfig() all go through here, so a bad service fails
 * the same way, before anything is registered. Split from broker.ts.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { bulkheadError } from '../errors.js';
import { loadProtocol, protocolPath } from '../protocol/registry.js';
import { parseProfile } from '../sandbox/index.js';
import { didYouMean } from '../util/suggest.js';
import type { Clock } from './clock.js';
import { LaunchAutomation } from './launch-automation.js';
import { checkManifest, type ServiceManifest } from './manifest.js';
import { SHIPPED_PROFILES_DIR } from './package-paths.js';
import { checkPrewarmRuntime } from './prewarm-runtime.js';
import { availableProfiles } from './profile-names.js';
import type { PreparedService } from './reload-plan.js';

/** Where a broker finds what manifests name. */
export interface PrepareContext {
  /** Absolute app root: entries, watched paths and sandbox paths are relative to it. */
  root: string;
  protocolsDir: string;
  /** The app's profiles; shipped ones are looked up after them. */
  profilesDir: string;
  /** For checking schedules. */
  clock: Clock;
}

/**
 * Checks one manifest and resolves all a launch needs (entry, protocol,
 * profile, launch policy), changing nothing.
 * @throws BulkheadError `ERR_INVALID_MANIFEST`, `ERR_UNKNOWN_PROTOCOL`, `ERR_INVALID_PROTOCOL`, `ERR_INVALID_PROFILE`, naming `source`
 */
export function prepareService(input: ServiceManifest, source: string, where: PrepareContext): PreparedService {
  const { root } = where;
  const manifest = checkManifest(input, source);
  const entry = isAbsolute(manifest.entry) ? manifest.entry : resolve(root, manifest.entry);
  if (!existsSync(entry) || !statSync(entry).isFile()) {
    throw bulkheadError('ERR_INVALID_MANIFEST', `Manifest for service "${manifest.name}" (${source}): /entry ${entry} is not a file. Entries are relative to the broker root ${root}.`, { source, pointer: '/entry' });
  }
  checkPrewarmRuntime(manifest, entry, source);
  const protocol = loadProtocol(where.protocolsDir, manifest.protocol);
  const profile = manifest.sandbox === undefined ? undefined : loadServiceProfile(where.profilesDir, manifest.sandbox, manifest.name, source);
  LaunchAutomation.check(manifest.launch ?? {}, protocol, where.clock, source);
  (manifest.launch?.watchPaths ?? []).forEach((path, index) => {
    if (!existsSync(resolve(root, path))) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /launch/watchPaths/${index} ${resolve(root, path)} does not exist; it must exist to be watched.`, { source, pointer: `/launch/watchPaths/${index}` });
    }
  });
  return {
    source,
    resolved: {
      manifest, entry, serviceDir: dirname(entry), protocol, protocolFile: protocolPath(where.protocolsDir, manifest.protocol), profile,
      sandboxPaths: { root, ...Object.fromEntries(Object.entries(manifest.sandboxPaths ?? {}).map(([k, v]) => [k, resolve(root, v)])) },
    },
  };
}

/** Reads and checks the profile a manifest names: the app's `profilesDir` first, then the shipped ones. */
function loadServiceProfile(profilesDir: string, name: string, service: string, source: string): { name: string; document: unknown } {
  for (const dir of [profilesDir, SHIPPED_PROFILES_DIR]) {
    const file = join(dir, `${name}.json`);
    if (!existsSync(file)) continue;
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw bulkheadError('ERR_INVALID_PROFILE', `Sandbox profile ${file} is not valid JSON: ${(err as Error).message}`, { source: file, pointer: '/' }, err);
    }
    parseProfile(name, document); // a bad profile fails register(), not the first launch
    return { name, document };
  }
  const available = availableProfiles([profilesDir, SHIPPED_PROFILES_DIR]);
  throw bulkheadError('ERR_INVALID_MANIFEST', `Manifest for service "${service}" (${source}): /sandbox names profile "${name}", which is neither in ${profilesDir} nor shipped with bulkhead.${didYouMean(name, available)} Available profiles: ${available.join(', ')}.`, { source, pointer: '/sandbox', available });
}

/**
 * Prepares every service of a config (`label` names it in messages), by name.
 * @throws BulkheadError the first bad service's error, or `ERR_INVALID_MANIFEST` for a name given twice
 */
export function prepareServices(services: readonly ServiceManifest[], label: string, where: PrepareContext): Map<string, PreparedService> {
  const prepared = new Map<string, PreparedService>();
  services.forEach((manifest, index) => {
    const source = `${label} /services/${index}`;
    const service = prepareService(manifest, source, where);
    const name = service.resolved.manifest.name;
    if (prepared.has(name)) throw bulkheadError('ERR_INVALID_MANIFEST', `Service "${name}" is declared twice (${source}); names must be unique.`, { source, pointer: '/name' });
    prepared.set(name, service);
  });
  return prepared;
}
