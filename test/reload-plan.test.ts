// planReload (lib/broker/reload-plan.ts), pure: a manifest whose only change is `clients` is
// updated in place (its helper kept); any other change restarts it; a protocol change re-registers.
import t from 'tap';
import { planReload, type PreparedService } from '../lib/broker/reload-plan.js';
import type { ServiceManifest } from '../lib/broker/manifest.js';

const protocol = { name: 'com.test.echo', hash: 'h1' };
const manifest = (extra: Partial<ServiceManifest> = {}): ServiceManifest => ({ name: 'echo', entry: './echo.js', protocol: 'com.test.echo', clients: ['app-a'], ...extra });
const prepared = (m: ServiceManifest, hash = 'h1'): PreparedService => ({ resolved: { manifest: m, protocol: { ...protocol, hash } }, source: 'test' } as unknown as PreparedService);

function plan(next: ServiceManifest, hash?: string) {
  return planReload(new Map([['echo', manifest()]]), new Map([['echo', { protocol }]]), new Map([['echo', prepared(next, hash)]]));
}

t.test('clients only: updated in place', async (t) => {
  t.same(plan(manifest({ clients: ['app-a', 'app-b'] })), { removed: [], added: [], replaced: [], updated: ['echo'], reregistered: [] });
  t.same(plan(manifest({ clients: undefined })).updated, ['echo'], 'clients removed altogether');
});

t.test('clients and anything else, or anything else: restarted', async (t) => {
  t.same(plan(manifest({ clients: ['app-b'], maxInFlight: 4 })).replaced, ['echo']);
  t.same(plan(manifest({ maxInFlight: 4 })).replaced, ['echo']);
  t.same(plan(manifest({ connects: ['other'] })).replaced, ['echo'], 'connects is not clients');
});

t.test('no change: nothing; another protocol: re-registered', async (t) => {
  t.same(plan(manifest()), { removed: [], added: [], replaced: [], updated: [], reregistered: [] });
  t.same(plan(manifest({ clients: ['app-b'] }), 'h2').reregistered, ['echo']);
});
