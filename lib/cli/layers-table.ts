/**
 * `bulkhead ps --layers`: per service, each rule of its sandbox profile and
 * the layers that enforce it on this host (what `ps --json` carries in
 * `sandbox.rules`), one line per rule, unenforced rules flagged with what is
 * missing.
 * @module
 */
import type { ServiceStatus } from '../broker/service-supervisor.js';
import { colors, formatSandbox, type Colors } from './format.js';

/** Marks a rule no layer enforces on this host. */
const UNENFORCED_MARK = '!';

/**
 * The per-rule layer view of every service given.
 * @param services - what the daemon's `list` answered
 * @param options.colors - colours (none by default)
 */
export function layersTable(services: readonly ServiceStatus[], options: { colors?: Colors } = {}): string {
  const c = options.colors ?? colors(false);
  const blocks: string[] = [];
  for (const s of services) {
    const head = `${c.bold(s.name)}  ${formatSandbox(s.sandbox)}`;
    if (s.sandbox === null) {
      blocks.push(`${head}\n  (no launch yet: the report is made when the helper is launched)`);
      continue;
    }
    if (s.sandbox.profile === 'none') {
      blocks.push(`${head}\n  (no sandbox profile: the helper runs unsandboxed)`);
      continue;
    }
    const width = Math.max(4, ...s.sandbox.rules.map((r) => r.rule.length));
    const lines = [`  ${c.bold('RULE'.padEnd(width))}  ${c.bold('LAYERS')}`];
    for (const r of s.sandbox.rules) {
      const layers = r.layers.length > 0 ? r.layers.join(', ') : '-';
      if (r.unenforced) {
        lines.push(c.red(`${UNENFORCED_MARK} ${r.rule.padEnd(width)}  ${layers}  (unenforced${r.missing !== undefined ? `; missing ${r.missing}` : ''})`));
      } else {
        lines.push(`  ${r.rule.padEnd(width)}  ${layers}`);
      }
    }
    blocks.push(`${head}\n${lines.join('\n')}`);
  }
  return blocks.join('\n\n');
}
