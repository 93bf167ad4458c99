// ESLint flat config. `npm run lint` runs it (and `npm test` runs lint after tap, as grpc-js
// runs gts after its tests). Three kinds of rules:
//   1. typescript-eslint's strict type-checked set: floating and misused promises, unsafe any, ...
//   2. import-x/no-cycle: no module imports itself back through others.
//   3. import-x/no-restricted-paths: DESIGN.md's layer arrows, so a wrong import fails CI.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// DESIGN.md, "Layers" (arrows point at what a layer may import):
//
//   cli ─► daemon ─► broker ─► connection ─► protocol ─► wire
//                      │            ▲
//                      ├─► sandbox  └── service (the helper's runtime: lib/service.ts, lib/prewarm.ts)
//                      └─► identity
//
// lib/errors.ts and lib/util/ are the floor every layer may use. lib/index.ts and lib/testing.ts are
// the public entry points: they gather the layers and nothing in lib/ imports them.
// Each zone says: files in `target` must not import files in `from`.
const L = {
  errors: './lib/errors.ts',
  util: './lib/util',
  wire: './lib/wire',
  protocol: './lib/protocol',
  connection: './lib/connection',
  service: ['./lib/service.ts', './lib/prewarm.ts'],
  sandbox: './lib/sandbox',
  identity: './lib/identity',
  broker: './lib/broker',
  daemon: './lib/daemon',
  cli: './lib/cli',
  entry: ['./lib/index.ts', './lib/testing.ts'],
};
/** Every layer but the floor: what the floor (and the layers named in `except`) must not import. */
const above = (...except) =>
  ['wire', 'protocol', 'connection', 'service', 'sandbox', 'identity', 'broker', 'daemon', 'cli', 'entry']
    .filter((name) => !except.includes(name))
    .flatMap((name) => L[name]);
const zone = (target, from, message) => ({ target: L[target], from, message });

const layerZones = [
  zone('errors', above(), 'lib/errors.ts is the floor: it imports no layer.'),
  zone('util', above(), 'lib/util is the floor: it imports no layer.'),
  zone('wire', above('wire'), 'wire knows nothing of services: it imports only errors, util and itself (DESIGN.md layers).'),
  zone('protocol', above('wire', 'protocol'), 'protocol imports only wire (DESIGN.md layers); never connection or broker code.'),
  zone('connection', above('wire', 'protocol', 'connection'), 'connection imports only protocol and wire (DESIGN.md layers).'),
  zone(
    'service',
    above('wire', 'protocol', 'connection', 'service'),
    'The helper runtime (lib/service.ts and what it imports) never pulls in broker, sandbox, identity, daemon or cli: it starts fast and small (DESIGN.md).',
  ),
  zone('sandbox', above('wire', 'protocol', 'sandbox'), 'sandbox may use protocol/wire helpers, never connection, broker, identity, daemon or cli.'),
  zone('identity', above('identity'), 'identity imports only errors, node built-ins and node-forge.'),
  zone('broker', above('wire', 'protocol', 'connection', 'sandbox', 'identity', 'broker'), 'broker never imports daemon, cli, the helper runtime or the entry points (DESIGN.md layers).'),
  zone('daemon', [L.cli, L.entry, L.service].flat(), 'daemon never imports cli, the helper runtime or the entry points.'),
  zone('cli', [L.entry, L.service].flat(), 'cli imports the layers, not the public entry points or the helper runtime.'),
].map((z) => ({ ...z, from: [z.from].flat() }));

/** The longest a file in lib/ may be (test/lint-rules.test.ts shows the rule fires at one line more). */
const MAX_LIB_FILE_LINES = 400;
const ENV_NAME_MESSAGE =
  'Name a BULKHEAD_* environment variable through its one module: HELPER_ENV (lib/wire/helper-env.ts) for the helper environment, CLI_ENV (lib/cli/cli-env.ts) for CLI settings.';

export default defineConfig(
  {
    ignores: ['dist/**', 'node_modules/**', 'docs/api/**', 'coverage/**', '.tap/**', 'fuzz/**', '**/*.js', '**/*.cjs', '**/*.mjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // Numbers and booleans read fine in messages (`exit ${code}`); objects, null, undefined and any
      // stay refused, because they print as "[object Object]" or "undefined".
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `(err) => reject(err)` and `() => void doThing()` are the idiom for callbacks; a void
      // expression in a statement or a non-arrow return is still refused.
      // `return this.fail(...)` inside a function that itself returns void is an early exit, not a value.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidOperator: true, ignoreVoidReturningFunctions: true }],
      // tsconfig has noUncheckedIndexedAccess: `items[i]!` after a bounds check (and `map.get(k)!` after
      // `has(k)`) is how a checked index is written; the hot decoders (wire/codec.ts) rely on it. tsc's
      // strict mode still checks every other use of the value.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `this: void` is how a method type says it may be called unbound (what unbound-method asks for).
      '@typescript-eslint/no-invalid-void-type': ['error', { allowAsThisParameter: true }],
      // Passing on what a catch caught (typed unknown) is not inventing a non-Error rejection.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    files: ['lib/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // So no-cycle parses the .ts files it follows (its default is .js only, which finds no cycle at all).
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layerZones }],
      // One idea per file (CONVENTIONS.md): no file in lib/ over 400 lines, counted as `wc -l` counts
      // them (blank lines and comments included; ESLint drops only the final newline's empty line).
      // A file that grows past it is split along a seam, never exempted.
      'max-lines': ['error', { max: MAX_LIB_FILE_LINES, skipBlankLines: false, skipComments: false }],
    },
  },
  {
    // Every environment variable name has one home: what a broker sets for its helpers is HELPER_ENV
    // (lib/wire/helper-env.ts, the helper environment contract), a `bulkhead` CLI setting is CLI_ENV
    // (lib/cli/cli-env.ts), the cgroup delegation setting is CGROUP_ENV (lib/sandbox/cgroup-probe.ts), the
    // resolv.conf files a `full` helper's DNS is planned from are RESOLV_*_ENV (lib/sandbox/pasta-dns.ts).
    // Elsewhere a BULKHEAD_* name written as a string or a plain object key is refused.
    files: ['lib/**/*.ts'],
    ignores: ['lib/wire/helper-env.ts', 'lib/cli/cli-env.ts', 'lib/sandbox/cgroup-probe.ts', 'lib/sandbox/pasta-dns.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'Literal[value=/^BULKHEAD_[A-Z0-9_]*$/]', message: ENV_NAME_MESSAGE },
        { selector: 'Property[computed=false] > Identifier.key[name=/^BULKHEAD_/]', message: ENV_NAME_MESSAGE },
      ],
    },
  },
);
