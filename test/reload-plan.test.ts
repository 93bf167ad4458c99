// planReload (lib/broker/reload-plan.ts), pure: a manifest whose only change is `clients` is
// updated in place (its helper kept); any other change restarts it; a protocol change re-registers;
// a profile document edited under the same name restarts it too (compared by content, not key order).
import t from 'tap';
import { planReload, type PreparedService } from '../lib/broker/reload-plan.js';
import type { ServiceManifest } from '../lib/broker/manifest.js';

const protocol = { name: 'com.test.echo', hash: 'h1' };
const manifest = (extra: Partial<ServiceManifest> = {}): ServiceManifest => ({ name: 'echo', entry: './echo.js', protocol: 'com.test.echo', clients: ['app-a'], ...extra });
type Profile = { name: string; document: unknown } | undefined;
const prepared = (m: ServiceManifest, hash = 'h1', profile?: Profile): PreparedService => ({ resolved: { manifest: m, protocol: { ...protocol, hash }, profile }, source: 'test' } as unknown as PreparedService);
const running = (profile?: Profile) => new Map([['echo', { resolvedService: { protocol, profile } as never }]]);

function plan(next: ServiceManifest, hash?: string) {
  return planReload(new Map([['echo', manifest()]]), running(), new Map([['echo', prepared(next, hash)]]));
}

const OLD_PROFILE = { name: 'tight', document: { network: 'none', limits: { memoryMiB: 512 }, fs: { read: ['/data'], write: [] } } };

function planProfile(was: Profile, next: Profile, nextManifest = manifest({ sandbox: 'tight' }), hash?: string) {
  return planReload(new Map([['echo', manifest({ sandbox: 'tight' })]]), running(was), new Map([['echo', prepared(nextManifest, hash, next)]]));
}

t.test('clients only: updated in place', async (t) => {
  t.same(plan(manifest({ clients: ['app-a', 'app-b'] })), { removed: [], added: [], replaced: [], updated: ['echo'], reregistered: [], editedProfiles: [] });
  t.same(plan(manifest({ clients: undefined })).updated, ['echo'], 'clients removed altogether');
});

t.test('clients and anything else, or anything else: restarted', async (t) => {
  t.same(plan(manifest({ clients: ['app-b'], maxInFlight: 4 })).replaced, ['echo']);
  t.same(plan(manifest({ maxInFlight: 4 })).replaced, ['echo']);
  t.same(plan(manifest({ connects: ['other'] })).replaced, ['echo'], 'connects is not clients');
});

t.test('no change: nothing; another protocol: re-registered', async (t) => {
  t.same(plan(manifest()), { removed: [], added: [], replaced: [], updated: [], reregistered: [], editedProfiles: [] });
  t.same(plan(manifest({ clients: ['app-b'] }), 'h2').reregistered, ['echo']);
});

t.test('a profile edited under the same name: restarted, and named in editedProfiles', async (t) => {
  const lower = { name: 'tight', document: { ...OLD_PROFILE.document, limits: { memoryMiB: 256 } } };
  t.same(planProfile(OLD_PROFILE, lower), { removed: [], added: [], replaced: ['echo'], updated: [], reregistered: [], editedProfiles: ['echo'] });
  t.same(planProfile(OLD_PROFILE, lower, manifest({ sandbox: 'tight', clients: ['app-b'] })).replaced, ['echo'], 'clients changed too: restarted, not merely updated');
  t.same(planProfile(OLD_PROFILE, lower, manifest({ sandbox: 'tight' }), 'h2'), { removed: [], added: [], replaced: [], updated: [], reregistered: ['echo'], editedProfiles: ['echo'] }, 'with another protocol: re-registered, still named');
});

t.test('the same profile, its keys reordered: nothing; another profile name: a manifest change, not an edit', async (t) => {
  const reordered = { name: 'tight', document: { fs: { write: [], read: ['/data'] }, limits: { memoryMiB: 512 }, network: 'none' } };
  t.same(planProfile(OLD_PROFILE, reordered), { removed: [], added: [], replaced: [], updated: [], reregistered: [], editedProfiles: [] });
  t.same(planProfile(OLD_PROFILE, { name: 'loose', document: {} }, manifest({ sandbox: 'loose' })), { removed: [], added: [], replaced: ['echo'], updated: [], reregistered: [], editedProfiles: [] });
  t.same(planProfile(OLD_PROFILE, { name: 'tight', document: { ...OLD_PROFILE.document, fs: { read: ['/data', '/other'], write: [] } } }).editedProfiles, ['echo'], 'an array changed inside: an edit');
});
