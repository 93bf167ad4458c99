/**
 * The checks behind `bulkhead validate`: protocol files (as the broker loads
 * them), bulkhead config files (`{ root?, maxFrameBytes?, services: [...], daemon? }`,
 * the checks `Broker.fromConfig` makes) and sandbox profiles (the sandbox
 * layer's own `checkProfile`). Every problem is collected; nothing throws
 * except a bug. Nothing is launched: a config is never handed to a Broker,
 * since a manifest with `launch.runAtLoad` would start its helper.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { checkManifest } from '../broker/manifest.js';
import { SHIPPED_PROFILES_DIR } from '../broker/package-paths.js';
import { resolveDaemonSettings } from '../daemon/daemon-settings.js';
import { isBulkheadError } from '../errors.js';
import { loadProtocol, loadProtocolFile } from '../protocol/registry.js';
import { PROFILE_SCHEMA, checkProfile } from '../sandbox/index.js';
import { collectJsonFiles, type FileKind, type FoundFile } from './files.js';
import { problemFromError, type Problem } from './problems.js';
import { isDirectory, isFile } from '../util/fs-kind.js';

/** Options of {@link validatePaths}. */
export interface ValidateOptions {
  /**
   * Treat every file as this kind instead of guessing from its directory and content.
   * @default undefined (guess)
   */
  as?: FileKind;
}

/** One file that was checked. */
export interface CheckedFile {
  file: string;
  kind: FileKind;
  /** True when no problem was found in it. */
  ok: boolean;
}

/** Everything `bulkhead validate` found. */
export interface ValidateReport {
  /** True when there is no problem at all. */
  ok: boolean;
  checked: CheckedFile[];
  /** JSON files found under a directory that are none of bulkhead's kinds (e.g. package.json). */
  skipped: Array<{ file: string; reason: string }>;
  problems: Problem[];
}

const CONFIG_KEYS = ['$schema', 'root', 'maxFrameBytes', 'services', 'daemon'];
const PROFILE_KEYS = Object.keys(PROFILE_SCHEMA.properties);

/**
 * Checks every protocol, config and profile file under `paths`.
 * @param paths - files and directories (see `collectJsonFiles`)
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async so that any failure rejects the promise rather than throwing
export async function validatePaths(paths: readonly string[], options: ValidateOptions = {}): Promise<ValidateReport> {
  const { files, missing } = collectJsonFiles(paths);
  const problems = new ProblemList();
  const report: ValidateReport = { ok: true, checked: [], skipped: [], problems: problems.items };
  for (const path of missing) {
    problems.add({ file: path, pointer: '', code: 'ENOENT', message: 'No such file or directory; check the path.' });
  }
  for (const found of files) {
    const before = problems.countFor(found.path);
    const kind = options.as ?? found.hint ?? classify(found, problems, report);
    if (kind === undefined) continue;
    if (kind === 'protocol') checkProtocolFile(found.path, problems);
    else if (kind === 'profile') checkProfileFile(found.path, problems);
    else checkConfigFile(found.path, problems);
    report.checked.push({ file: found.path, kind, ok: problems.countFor(found.path) === before });
  }
  report.ok = problems.items.length === 0;
  return report;
}

/** Problems without duplicates (a protocol can be reached from a config and from a directory scan). */
class ProblemList {
  readonly items: Problem[] = [];
  private readonly keys = new Set<string>();

  add(problem: Problem): void {
    const key = JSON.stringify([resolve(problem.file), problem.pointer, problem.code, problem.message]);
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.items.push(problem);
  }

  countFor(file: string): number {
    return this.items.filter((p) => p.file === file).length;
  }
}

/** Guesses a file's kind from its content; undefined when it is none of ours. */
function classify(found: FoundFile, problems: ProblemList, report: ValidateReport): FileKind | undefined {
  const parsed = readJson(found.path);
  const value = parsed.ok ? parsed.value : undefined;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.includes('methods')) return 'protocol';
    if (keys.includes('services')) return 'config';
    if (keys.length > 0 && keys.every((k) => PROFILE_KEYS.includes(k))) return 'profile';
  }
  // A file the user named, or one that looks like a bulkhead config, must not be passed over in silence.
  if (found.explicit || /^bulkhead.*\.json$/.test(basename(found.path))) {
    problems.add(parsed.ok
      ? { file: found.path, pointer: '', code: 'ERR_INVALID_OPTION', message: 'Cannot tell whether this is a protocol (has "methods"), a config (has "services") or a sandbox profile; pass --as protocol|config|profile.' }
      : { file: found.path, pointer: '', code: 'ERR_INVALID_OPTION', message: `Not valid JSON (${parsed.error}); fix the syntax.` });
    return undefined;
  }
  report.skipped.push({ file: found.path, reason: parsed.ok ? 'not a protocol, config or sandbox profile' : 'not valid JSON' });
  return undefined;
}

function checkProtocolFile(file: string, problems: ProblemList): void {
  try {
    // The broker finds protocol <name> at protocols/<name>.json, so the two must agree.
    loadProtocolFile(file, basename(file, '.json'));
  } catch (err) {
    problems.add(problemFromError(err, file));
  }
}

function checkProfileFile(file: string, problems: ProblemList): void {
  const parsed = readJson(file);
  if (!parsed.ok) {
    problems.add({ file, pointer: '', code: 'ERR_INVALID_PROFILE', message: `Sandbox profile is not valid JSON (${parsed.error}); fix the syntax.` });
    return;
  }
  for (const problem of checkProfile(parsed.value)) {
    problems.add({ file, pointer: problem.pointer === '/' ? '' : problem.pointer, code: 'ERR_INVALID_PROFILE', message: `${problem.message}. See docs/sandbox.md for the profile format.` });
  }
}

function checkConfigFile(file: string, problems: ProblemList): void {
  const parsed = readJson(file);
  if (!parsed.ok) {
    problems.add({ file, pointer: '', code: 'ERR_INVALID_MANIFEST', message: `Config is not valid JSON (${parsed.error}); fix the syntax.` });
    return;
  }
  const config = parsed.value as Record<string, unknown> | null;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    problems.add({ file, pointer: '', code: 'ERR_INVALID_MANIFEST', message: 'A config must be an object { root?, maxFrameBytes?, services: [...] }.' });
    return;
  }
  for (const key of Object.keys(config)) {
    if (!CONFIG_KEYS.includes(key)) problems.add({ file, pointer: `/${key}`, code: 'ERR_INVALID_MANIFEST', message: `Unknown field; a config has ${CONFIG_KEYS.slice(1).join(', ')}. Remove it or fix its spelling.` });
  }
  if (config['daemon'] !== undefined) {
    try {
      resolveDaemonSettings(config['daemon'], dirname(file), {}, file);
    } catch (err) {
      problems.add(problemFromError(err, file));
    }
  }
  const frame = config['maxFrameBytes'];
  if (frame !== undefined && (typeof frame !== 'number' || !Number.isInteger(frame) || frame < 64 || frame > 0xffffffff)) {
    problems.add({ file, pointer: '/maxFrameBytes', code: 'ERR_INVALID_OPTION', message: 'maxFrameBytes must be an integer from 64 to 2^32-1 (bytes).' });
  }
  if (config['root'] !== undefined && typeof config['root'] !== 'string') {
    problems.add({ file, pointer: '/root', code: 'ERR_INVALID_MANIFEST', message: 'root must be a directory path, relative to the config file.' });
  }
  const root = resolve(dirname(file), typeof config['root'] === 'string' ? config['root'] : '.');
  const rootOk = isDirectory(root);
  if (!rootOk) problems.add({ file, pointer: '/root', code: 'ERR_INVALID_OPTION', message: `${root} is not a directory; root is relative to the config file's directory.` });
  const services = config['services'];
  if (!Array.isArray(services)) {
    problems.add({ file, pointer: '/services', code: 'ERR_INVALID_MANIFEST', message: 'services must be an array of service manifests.' });
    return;
  }
  const names = new Set<string>();
  services.forEach((input: unknown, index) => {
    const at = `/services/${index}`;
    let manifest;
    try {
      manifest = checkManifest(input, `${file} ${at}`);
    } catch (err) {
      problems.add(problemFromError(err, file, at));
      return;
    }
    if (names.has(manifest.name)) problems.add({ file, pointer: `${at}/name`, code: 'ERR_INVALID_MANIFEST', message: `Service "${manifest.name}" is declared twice; names must be unique.` });
    names.add(manifest.name);
    if (!rootOk) return;
    const entry = isAbsolute(manifest.entry) ? manifest.entry : resolve(root, manifest.entry);
    if (!isFile(entry)) problems.add({ file, pointer: `${at}/entry`, code: 'ERR_INVALID_MANIFEST', message: `${entry} is not a file; entries are relative to the broker root ${root}.` });
    try {
      loadProtocol(join(root, 'protocols'), manifest.protocol);
    } catch (err) {
      if (isBulkheadError(err, 'ERR_UNKNOWN_PROTOCOL')) problems.add(problemFromError(err, file, `${at}/protocol`));
      // A broken protocol file is reported against that file, where it has to be fixed.
      else problems.add(problemFromError(err, join(root, 'protocols', `${manifest.protocol}.json`)));
    }
    if (manifest.sandbox !== undefined) {
      const profile = [join(root, 'sandbox-profiles'), SHIPPED_PROFILES_DIR].map((dir) => join(dir, `${manifest.sandbox}.json`)).find((f) => existsSync(f));
      if (profile === undefined) {
        problems.add({ file, pointer: `${at}/sandbox`, code: 'ERR_INVALID_MANIFEST', message: `No sandbox profile "${manifest.sandbox}" in ${join(root, 'sandbox-profiles')} or among bulkhead's shipped profiles; create it or fix the name.` });
      } else {
        checkProfileFile(profile, problems);
      }
    }
  });
}

function readJson(file: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(readFileSync(file, 'utf8')) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
