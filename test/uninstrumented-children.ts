/**
 * Loaded into every test process by tap (package.json `tap.node-arg`), after tap's own `--import`s: the processes a
 * test starts (helpers, daemons, CLI runs, fixtures) run without tap's processinfo instrumentation.
 *
 * tap's `@tapjs/processinfo` records which process ran which files, for coverage and `--changed`; this suite runs
 * with coverage off. It follows every child: a spawn hook (`process-on-spawn`) and the test's own `NODE_OPTIONS`
 * add `--import=…/processinfo/…/import.mjs` to each one. On Node 20 that import registers module hooks on a
 * separate loader thread (`module.register`), and every module a child loads goes through it: measured on
 * supervision-restart, 2.1 s of CPU without it against 5.3–5.9 s with it (Node 24, whose processinfo uses in-thread
 * `module.registerHooks`: 2.1–2.7 against 3.6–3.9 s). The children then run as they would outside the test runner.
 * The test process itself keeps tap's instrumentation.
 */
/** process-on-spawn's state, shared through a global symbol; processinfo's spawn hook is its only listener here. */
const spawnHooks = (globalThis as unknown as Record<symbol, { listeners?: unknown[] } | undefined>)[Symbol.for('process-on-spawn@*:singletonId')];
if (spawnHooks?.listeners !== undefined) spawnHooks.listeners.length = 0;

/** processinfo's `--import`/`--loader` in NODE_OPTIONS (quoted or not, `=` or a space before the value). */
const PROCESSINFO_OPTION = /(^|\s)"?--(?:import|loader|experimental-loader)[= ]"?[^"\s]*@tapjs[/\\]processinfo[/\\][^"\s]*"?/g;
const options = process.env['NODE_OPTIONS'];
if (options !== undefined) {
  const kept = options.replace(PROCESSINFO_OPTION, '').trim();
  if (kept === '') delete process.env['NODE_OPTIONS'];
  else process.env['NODE_OPTIONS'] = kept;
}
