// What crash.mjs and round.mjs share: a broker over BUILD_DIR's bench fixtures with one prewarmed echo service
// (PROFILE=pure-compute for a sandboxed one) that has answered a first call, and a helper's process tree.
import { readFileSync } from 'node:fs';

/** The call both scripts make. */
export const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The broker of build `wt`, its connection to the prewarmed `echo` (one call made), isBulkheadError and the profile. */
export async function prewarmedEcho(wt) {
  const { Broker, isBulkheadError } = await import(`${wt}/dist/lib/index.js`);
  const broker = new Broker({ root: `${wt}/bench/fixtures/` });
  const profile = process.env.PROFILE;
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', ...(profile ? { sandbox: profile } : {}), launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
  const c = broker.connect('echo');
  await c.call('echo', MSG);
  return { broker, c, isBulkheadError, profile };
}

/** `pid` and its descendants (sandbox wrappers and node), from /proc. */
export function processTree(pid) {
  const kids = (p) => { try { return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
  const all = [pid]; for (let i = 0; i < all.length; i++) all.push(...kids(all[i]));
  return all;
}
