// Runs the demo app (what `npm start` runs) as a child process and checks what
// really happened, from the JSON it writes to $BULKHEAD_DEMO_RESULT and from /proc:
// it exits 0, the crashed helper's pid differs from the relaunched one, the
// in-flight call failed with ERR_INTERRUPTED, a bad call failed with
// ERR_INVALID_PARAMS, and no helper process is left behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, alive } from './helpers.js';

const MAIN = join(REPO_ROOT, 'examples', 'demo', 'main.js');
const SERVICES_DIR = join(REPO_ROOT, 'examples', 'demo', 'services');
const RUN_TIMEOUT_MS = 60_000;

interface DemoResult {
  ok: boolean;
  sandbox: string | null;
  idleAfterRegister: boolean;
  documents: Array<{ file: string; title: string | null; words: number; headings: number; bytes: number; sha256: string; gzip: number; brotli: number; match: boolean }>;
  checksumsMatch: boolean;
  crash: { victimPid: number; callError: string | null; interruptedEvent: string | null; signal: string | null; progressEventsBeforeCrash: number };
  markdownUnaffected: boolean;
  relaunch: { pid: number; launches: number; crashes: number; states: string[]; retryCompleted: boolean; sha256Match: boolean; progressEvents: number };
  validation: { code: string | null; instancePath: string | null; message: string | null };
  status: Array<{ name: string; state: string; pid: number | null; launches: number; crashes: number; lastExit: string | number | null; sandbox: string | null }>;
  launches: Array<{ service: string; pid: number }>;
  exits: Array<{ service: string; code: number | null; signal: string | null; requested: boolean }>;
  leftoverPids: number[];
  leftoverProcesses: number;
  elapsedMs: number;
  error?: { code?: string; message: string };
}

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  result: DemoResult | undefined;
}

function runDemo(args: string[]): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const dir = mkdtempSync(join(tmpdir(), 'bulkhead-demo-result-'));
    const resultFile = join(dir, 'result.json');
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BULKHEAD_DEMO_RESULT: resultFile } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as DemoResult) : undefined;
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - started, result });
    });
  });
}

/** pids of processes whose command line runs one of the demo's helpers. */
function demoHelperPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(SERVICES_DIR)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

for (const variant of [{ args: [], sandbox: 'pure-compute' }, { args: ['--no-sandbox'], sandbox: null }]) {
  t.test(`node examples/demo/main.js ${variant.args.join(' ')}`.trim(), async (t) => {
    const run = await runDemo(variant.args);
    const r = run.result;
    t.equal(run.signal, null, 'the demo was not killed by the test timeout');
    t.equal(run.code, 0, 'exits 0');
    t.equal(run.stderr, '', 'nothing on stderr');
    if (r === undefined) {
      t.fail(`the demo wrote no result file; stdout:\n${run.stdout}`);
      return;
    }
    if (!r.ok) t.comment(run.stdout);
    t.equal(r.ok, true, 'the demo judged its own run a success');
    t.equal(r.sandbox, variant.sandbox);
    t.comment(`finished in ${Math.round(run.wallMs)} ms`); // a figure, not a claim (speed lives in bench/); a hang is tap's timeout
    t.notMatch(run.stdout, /DEMO-RESULT|^\{"ok"/m, "no machine-readable dump in a person's terminal");

    // Registration launches nothing; the first calls do, one helper each.
    t.equal(r.idleAfterRegister, true, 'nothing ran before the first call');
    t.same(r.launches.slice(0, 2).map((l) => l.service).sort(), ['digest', 'markdown'], 'each helper launched on its first call');

    // Real data went through both helpers; the main app re-hashed each document itself.
    t.equal(r.documents.length, 3, 'three documents from data/');
    for (const doc of r.documents) {
      t.match(doc.sha256, /^[0-9a-f]{64}$/);
      t.equal(doc.match, true, `${doc.file}: helper's sha256 matches the main app's, both round-trips verified`);
      t.ok(doc.words > 100 && doc.headings >= 3, `${doc.file}: rendered (${doc.words} words, ${doc.headings} headings)`);
      t.ok(doc.gzip < doc.bytes && doc.brotli < doc.bytes, `${doc.file}: compressed`);
    }

    // The crash: the in-flight call and the connection both report ERR_INTERRUPTED.
    t.equal(r.crash.callError, 'ERR_INTERRUPTED', 'the call in flight rejected with ERR_INTERRUPTED');
    t.equal(r.crash.interruptedEvent, 'ERR_INTERRUPTED', "the connection emitted 'interrupted'");
    t.equal(r.crash.signal, 'SIGKILL');
    t.ok(r.crash.progressEventsBeforeCrash >= 1, 'the job was under way when the helper died');
    t.equal(alive(r.crash.victimPid), false, 'the killed helper is gone');
    t.equal(r.markdownUnaffected, true, 'the other helper kept its pid and kept answering');

    // The relaunch: a new process, counted by the broker.
    t.not(r.relaunch.pid, r.crash.victimPid, 'the relaunched helper has a new pid');
    t.equal(r.relaunch.launches, 2);
    t.equal(r.relaunch.crashes, 1);
    t.same(r.relaunch.states.slice(-2), ['launching', 'running']);
    t.equal(r.relaunch.sha256Match, true, 'the retried job completed with the right digest');
    t.same(r.launches.filter((l) => l.service === 'digest').map((l) => l.pid), [r.crash.victimPid, r.relaunch.pid]);

    // Validation.
    t.equal(r.validation.code, 'ERR_INVALID_PARAMS');
    t.equal(r.validation.instancePath, '/brotliQuality', 'ajv path of the bad field');

    // Final status and a clean shutdown.
    const digest = r.status.find((s) => s.name === 'digest');
    const markdown = r.status.find((s) => s.name === 'markdown');
    t.match(digest, { state: 'running', launches: 2, crashes: 1, lastExit: 'SIGKILL', sandbox: variant.sandbox ?? 'none' });
    t.match(markdown, { state: 'running', launches: 1, crashes: 0, lastExit: null, sandbox: variant.sandbox ?? 'none' });
    t.same(r.exits.map((e) => e.service).sort(), ['digest', 'markdown'], 'both helpers exited on close');
    for (const e of r.exits) t.match(e, { code: 0, signal: null, requested: true }, `${e.service} exited gracefully`);
    t.same(r.leftoverPids, []);
    t.equal(r.leftoverProcesses, 0);
    for (const l of r.launches) t.equal(alive(l.pid), false, `helper pid ${l.pid} (${l.service}) is gone after the demo exited`);
    t.same(demoHelperPids(), [], 'no process runs a demo helper');
  });
}
