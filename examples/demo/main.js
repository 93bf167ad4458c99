// bulkhead demo: a small documentation pipeline split into two helpers.
//
//   markdown  renders Markdown to HTML, builds a table of contents, counts words
//   digest    SHA-256 + gzip/brotli sizes of a document, with progress events
//
// The main app (this file) owns the broker and never parses or compresses anything
// itself. It runs the sample documents in data/ through both helpers, crashes one
// helper in the middle of a job, shows the relaunch, shows a refused bad call, and
// closes everything. With BULKHEAD_DEMO_RESULT=<file> set, it also writes what happened
// as JSON to that file, for the test suite.
//
//   node examples/demo/main.js               # helpers in the pure-compute sandbox
//   node examples/demo/main.js --no-sandbox  # same, without a sandbox profile
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker, isBulkheadError } from 'bulkhead';

const DEMO_DIR = fileURLToPath(new URL('.', import.meta.url));
const SANDBOX = process.argv.includes('--no-sandbox') ? undefined : 'pure-compute';

// Manifests (launchd.plist's role). Both helpers only compute on their params, so
// both get the pure-compute profile: no network, no files beyond their own code.
const MANIFESTS = [
  { name: 'markdown', entry: './services/markdown.js', protocol: 'com.bulkhead.demo.markdown', timeoutMs: 10_000 },
  { name: 'digest', entry: './services/digest.js', protocol: 'com.bulkhead.demo.digest', timeoutMs: 30_000 },
].map((m) => (SANDBOX === undefined ? m : { ...m, sandbox: SANDBOX }));

const started = performance.now();
const result = { ok: false, sandbox: SANDBOX ?? null };
const say = (line = '') => console.log(line);
const step = (n, title) => say(`\n${n}. ${title}`);
const ms = (t0) => Math.round(performance.now() - t0);
const kib = (n) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);
const pct = (ratio) => `${Math.round(ratio * 100)}%`;
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
const describe = (err) => (isBulkheadError(err) ? `${err.code}: ${err.message}` : String(err?.stack ?? err));

const broker = new Broker({ root: DEMO_DIR });
const launches = []; // { service, pid }
broker.on('launch', (service, pid) => launches.push({ service, pid }));
// Launch time = from the 'launching' state (spawn) to 'running' (the helper said hello).
const launchingAt = new Map();
const launchMs = new Map();
broker.on('state', (service, state) => {
  if (state === 'launching') launchingAt.set(service, performance.now());
  if (state === 'running') launchMs.set(service, ms(launchingAt.get(service)));
});
// Anything a helper prints on stderr is shown, so nothing goes wrong silently.
broker.on('log', ({ service, stream, line }) => {
  if (stream === 'stderr') say(`   [${service} stderr] ${line}`);
});

try {
  await main();
} catch (err) {
  say(`\nThe demo stopped early: ${describe(err)}`);
  if (isBulkheadError(err, 'ERR_SANDBOX_UNENFORCEABLE')) {
    say('This host cannot enforce the pure-compute profile, and bulkhead fails closed rather than run');
    say('the helpers with less protection than promised. Install what the message names, or see the');
    say('rest of the demo without a sandbox:  npm start -- --no-sandbox');
  }
  result.error = isBulkheadError(err) ? { code: err.code, message: err.message } : { message: String(err) };
} finally {
  const exits = [];
  broker.on('exit', (service, info) => exits.push({ service, code: info.code, signal: info.signal, requested: info.requested }));
  const pids = broker.status().map((s) => s.pid).filter((pid) => pid !== null);
  await broker.close();
  result.exits = exits;
  result.leftoverPids = pids.filter(isAlive);
  result.leftoverProcesses = helperProcesses().length;
  if (result.ok) {
    step(7, 'Close the broker');
    for (const e of exits) say(`   ${e.service} said goodbye and exited with code ${e.code}${e.signal ? ` (${e.signal})` : ''}`);
    say(`   helper processes still running: ${result.leftoverProcesses}`);
    result.ok = exits.every((e) => e.requested && e.code === 0) && result.leftoverPids.length === 0 && result.leftoverProcesses === 0;
  }
  result.elapsedMs = ms(started);
  say(`\n${result.ok ? 'Done' : 'FAILED'} in ${(result.elapsedMs / 1000).toFixed(1)} s.`);
  const resultFile = process.env.BULKHEAD_DEMO_RESULT;
  if (resultFile) writeFileSync(resultFile, JSON.stringify(result));
  process.exitCode = result.ok ? 0 : 1;
}

async function main() {
  say('bulkhead demo: a documentation pipeline split into two helper processes');
  say(`   main app pid ${process.pid}, broker root ${DEMO_DIR}`);

  // ── 1 ────────────────────────────────────────────────────────────────────
  step(1, 'Register two services');
  for (const manifest of MANIFESTS) broker.register(manifest);
  for (const s of broker.status()) {
    const m = MANIFESTS.find((x) => x.name === s.name);
    say(`   ${s.name.padEnd(9)} ${m.entry.padEnd(23)} protocol ${s.protocol}, sandbox ${m.sandbox ?? 'none'}`);
  }
  say(`   Nothing is running yet: ${broker.status().map((s) => `${s.name} is ${s.state} (pid ${s.pid ?? '-'})`).join(', ')}.`);
  result.idleAfterRegister = broker.status().every((s) => s.state === 'idle' && s.pid === null) && launches.length === 0;

  const markdown = broker.connect('markdown');
  const digest = broker.connect('digest');

  // ── 2 ────────────────────────────────────────────────────────────────────
  const files = readdirSync(join(DEMO_DIR, 'data')).filter((f) => f.endsWith('.md')).sort();
  step(2, `Process ${files.length} documents from data/ (each helper launches on its first call)`);
  const docs = [];
  let checksumsMatch = true;
  for (const [index, file] of files.entries()) {
    const text = readFileSync(join(DEMO_DIR, 'data', file), 'utf8');
    const t0 = performance.now();
    // Both helpers work on the same document at the same time.
    const [page, dig] = await Promise.all([markdown.call('render', { markdown: text }), digest.call('digest', { name: file, text })]);
    const took = ms(t0);
    if (index === 0) {
      for (const name of ['markdown', 'digest']) {
        const s = broker.status(name);
        say(`   launched ${name.padEnd(8)} pid ${s.pid} in ${launchMs.get(name)} ms, ${sandboxSummary(s.sandbox)}`);
      }
      const layers = sandboxLayers(broker.status('digest').sandbox);
      if (layers.length > 0) say(`   sandbox layers: ${layers.join(', ')}`);
      say(`   first calls took ${took} ms, launches included`);
    }
    const ours = sha256(text);
    const match = ours === dig.sha256 && dig.gzip.roundTrip && dig.brotli.roundTrip;
    checksumsMatch &&= match;
    say(`   ${file.padEnd(20)} "${page.title}": ${page.stats.words} words, ${page.toc.length} headings, ${page.stats.readingMinutes} min read -> ${kib(Buffer.byteLength(page.html))} of HTML`);
    say(`   ${''.padEnd(20)} ${kib(dig.bytes)} -> gzip ${kib(dig.gzip.bytes)} (${pct(dig.gzip.ratio)}), brotli ${kib(dig.brotli.bytes)} (${pct(dig.brotli.ratio)}); sha256 ${dig.sha256.slice(0, 12)}… ${match ? 'matches ours' : 'DOES NOT MATCH'}`);
    if (index > 0 && index === files.length - 1) say(`   later calls took ${took} ms for both helpers together`);
    docs.push({ file, title: page.title, words: page.stats.words, headings: page.toc.length, htmlBytes: Buffer.byteLength(page.html), bytes: dig.bytes, sha256: dig.sha256, gzip: dig.gzip.bytes, brotli: dig.brotli.bytes, match });
  }
  result.documents = docs;
  result.checksumsMatch = checksumsMatch;
  const first = { markdown: broker.status('markdown').pid, digest: broker.status('digest').pid };

  // ── 3 ────────────────────────────────────────────────────────────────────
  const corpus = files.map((f) => readFileSync(join(DEMO_DIR, 'data', f), 'utf8')).join('\n\n');
  const archive = corpus.repeat(Math.ceil((2 * 1024 * 1024) / Buffer.byteLength(corpus)));
  const chunkBytes = 128 * 1024;
  step(3, `Crash the digest helper in the middle of a job (a ${kib(Buffer.byteLength(archive))} archive: every document, repeated)`);
  const interrupted = new Promise((resolve) => digest.once('interrupted', resolve));
  const progress = [];
  const firstProgress = new Promise((resolve) => {
    digest.onEvent('progress', (p) => {
      progress.push(p);
      resolve(p);
    });
  });
  // pauseMs: the job surely outlasts the kill below, even on a machine too busy to deliver it at once.
  const job = digest.call('digest', { name: 'archive', text: archive, chunkBytes, pauseMs: 50 });
  job.catch(() => {}); // inspected below
  // Wait for the job to be under way (or to end early, which would be a bug worth seeing).
  const p = await Promise.race([firstProgress, job.then(() => undefined, () => undefined)]);
  if (p === undefined) throw new Error(`the archive job ended before its first progress event: ${await job.then(() => 'it completed', describe)}`);
  const victim = broker.status('digest').pid;
  say(`   progress event: ${kib(p.doneBytes)} of ${kib(p.totalBytes)} done`);
  say(`   SIGKILL the digest helper (pid ${victim}) now, as an out-of-memory kill or a segfault would`);
  broker.kill('digest', 'SIGKILL');
  let jobError;
  try {
    await job;
  } catch (err) {
    jobError = err;
  }
  const progressAtCrash = progress.length;
  say(`   the call in flight rejected: ${jobError ? jobError.code ?? jobError : 'NO, it completed before the kill landed'}`);
  if (jobError?.message) say(`     "${jobError.message}"`);
  // The broker tells every connection of the service, whether or not it had a call in flight.
  let timer;
  const event = await Promise.race([interrupted, new Promise((resolve) => { timer = setTimeout(resolve, 2000, undefined); })]);
  clearTimeout(timer);
  say(`   the connection emitted 'interrupted' (${event ? event.code : 'NO EVENT within 2 s'}); it stays usable`);
  const mdAfter = await markdown.call('render', { markdown: '# Still here\n\nThe other helper did not notice.' });
  const mdSame = broker.status('markdown').pid === first.markdown && mdAfter.title === 'Still here';
  say(`   the markdown helper is untouched: still pid ${broker.status('markdown').pid}, still answering (${mdSame ? 'yes' : 'NO'})`);
  result.crash = {
    victimPid: victim,
    callError: jobError?.code ?? null,
    interruptedEvent: event?.code ?? null,
    signal: jobError?.data?.signal ?? null,
    progressEventsBeforeCrash: progressAtCrash,
  };
  result.markdownUnaffected = mdSame;

  // ── 4 ────────────────────────────────────────────────────────────────────
  step(4, 'Retry the same job: the next call relaunches the helper');
  const states = [];
  const sub = broker.on('state', (service, state) => {
    if (service === 'digest') states.push(state);
  });
  const before = progress.length;
  const t0 = performance.now();
  const retried = await digest.call('digest', { name: 'archive', text: archive, chunkBytes });
  const retryMs = ms(t0);
  sub.dispose();
  const s = broker.status('digest');
  const throttled = states.includes('throttled') ? ', waiting out the 1 s relaunch throttle' : '';
  say(`   digest went ${['idle', ...states].join(' -> ')}${throttled}`);
  say(`   relaunched in ${launchMs.get('digest')} ms: new pid ${broker.status('digest').pid} (was ${victim})`);
  say(`   launches: ${s.launches}, crashes: ${s.crashes}; the connection object is the same one as before the crash`);
  const retryMatch = retried.sha256 === sha256(archive) && retried.gzip.roundTrip && retried.brotli.roundTrip;
  say(`   ${kib(retried.bytes)} -> gzip ${kib(retried.gzip.bytes)}, brotli ${kib(retried.brotli.bytes)}; sha256 ${retried.sha256.slice(0, 12)}… ${retryMatch ? 'matches ours' : 'DOES NOT MATCH'}`);
  say(`   ${progress.length - before} progress events; ${retryMs} ms for the call: ${Math.round(retried.ms)} ms of work in the helper, the rest is ${throttled === '' ? '' : 'the throttle wait, '}the relaunch and the transfer`);
  result.relaunch = { pid: s.pid, launches: s.launches, crashes: s.crashes, states, retryCompleted: true, sha256Match: retryMatch, progressEvents: progress.length - before };

  // ── 5 ────────────────────────────────────────────────────────────────────
  step(5, 'A bad call is refused before any handler runs');
  try {
    await digest.call('digest', { name: 'x', text: 'hello', brotliQuality: 12 });
    say('   the call was ACCEPTED (it should not have been)');
    result.validation = { code: null };
  } catch (err) {
    const issue = err.data?.errors?.[0];
    say("   digest.call('digest', { name: 'x', text: 'hello', brotliQuality: 12 })");
    say(`   -> ${err.code} at ${issue?.instancePath}: ${issue?.message}  (ajv, in the helper)`);
    result.validation = { code: err.code ?? null, instancePath: issue?.instancePath ?? null, message: issue?.message ?? null, pidAfter: broker.status('digest').pid };
  }

  // ── 6 ────────────────────────────────────────────────────────────────────
  step(6, 'Status');
  say(`   ${'service'.padEnd(9)} ${'state'.padEnd(8)} ${'pid'.padEnd(8)} launches  crashes  last exit`);
  for (const st of broker.status()) {
    const last = st.lastExit === null ? '-' : st.lastExit.signal ?? `code ${st.lastExit.code}`;
    say(`   ${st.name.padEnd(9)} ${st.state.padEnd(8)} ${String(st.pid).padEnd(8)} ${String(st.launches).padEnd(9)} ${String(st.crashes).padEnd(8)} ${last}`);
  }
  result.status = broker.status().map((st) => ({ name: st.name, state: st.state, pid: st.pid, launches: st.launches, crashes: st.crashes, lastExit: st.lastExit?.signal ?? st.lastExit?.code ?? null, sandbox: st.sandbox?.profile ?? null }));
  result.launches = launches;

  result.ok = Boolean(
    result.idleAfterRegister && checksumsMatch && mdSame && retryMatch
    && result.crash.callError === 'ERR_INTERRUPTED' && result.crash.interruptedEvent === 'ERR_INTERRUPTED'
    && result.relaunch.pid !== victim && result.relaunch.launches === 2
    && result.validation.code === 'ERR_INVALID_PARAMS',
  );
}

/** "sandbox pure-compute: 13/13 rules enforced" */
function sandboxSummary(report) {
  if (report === null || report.profile === 'none') return 'no sandbox';
  return `sandbox ${report.profile}: ${report.rules.filter((r) => !r.unenforced).length}/${report.rules.length} rules enforced`;
}

/** Which mechanisms enforce the profile: "bubblewrap, setpriv, prlimit, node, ..." */
function sandboxLayers(report) {
  return [...new Set((report?.rules ?? []).flatMap((r) => r.layers.map((l) => l.split(':')[0])))];
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Processes on this host whose command line runs one of the demo's helpers. */
function helperProcesses() {
  const servicesDir = join(DEMO_DIR, 'services');
  const found = [];
  let entries = [];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return found; // no /proc: the pid check above still ran
  }
  for (const pid of entries) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(servicesDir) && Number(pid) !== process.pid) found.push({ pid: Number(pid), cmd: basename(cmd.split('\0').find((a) => a.includes(servicesDir)) ?? '') });
    } catch {
      // it exited while we looked
    }
  }
  return found;
}
