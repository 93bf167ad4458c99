// The `ps --layers` view, in memory: rules, layers, unenforced rules flagged with what is missing.
import t from 'tap';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { layersTable } from '../lib/cli/layers-table.js';

const status = (name: string, sandbox: ServiceStatus['sandbox']): ServiceStatus => ({ name, sandbox }) as unknown as ServiceStatus;

t.test('one block per service: header, then one line per rule', (t) => {
  const text = layersTable([
    status('fetch', {
      profile: 'network-client', enforcement: 'best-effort', rules: [
        { rule: 'network', layers: ['bubblewrap:netns', 'pasta'], unenforced: false },
        { rule: 'network.abstractUnix', layers: ['landlock:scope'], unenforced: true, missing: 'pasta (apt-get install -y passt)' },
        { rule: 'limits.cpuPercent', layers: [], unenforced: true },
      ],
    }),
    status('later', null),
    status('plain', { profile: 'none', enforcement: 'none', rules: [] }),
  ]);
  t.equal(text, [
    'fetch  network-client 1/3 best-effort',
    '  RULE                  LAYERS',
    '  network               bubblewrap:netns, pasta',
    '! network.abstractUnix  landlock:scope  (unenforced; missing pasta (apt-get install -y passt))',
    '! limits.cpuPercent     -  (unenforced)',
    '',
    'later  -',
    '  (no launch yet: the report is made when the helper is launched)',
    '',
    'plain  none',
    '  (no sandbox profile: the helper runs unsandboxed)',
  ].join('\n'));
  t.end();
});
