/**
 * The sandbox profile names a broker can find, for messages that list them
 * when a manifest names one that does not exist.
 * @module
 */
import { readdirSync } from 'node:fs';

/** Profile names (file names without `.json`) in `dirs`, sorted, without duplicates; unreadable dirs are skipped. */
export function availableProfiles(dirs: readonly string[]): string[] {
  const names = new Set<string>();
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue; // an app without its own sandbox-profiles/ dir: only the shipped ones exist
    }
    for (const entry of entries) if (entry.endsWith('.json')) names.add(entry.slice(0, -'.json'.length));
  }
  return [...names].sort();
}
