/**
 * Validates a sandbox profile document against {@link PROFILE_SCHEMA} and
 * fills in defaults, which are always the most restrictive choice.
 * @module
 */
import { escapePointer } from '../protocol/ajv-pointer.js';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { bulkheadError } from '../errors.js';
import { closestName } from '../util/suggest.js';
import { PROFILE_SCHEMA } from './profile-schema.js';

/** Network rule: no interface at all, the sandbox's own private loopback only, or the host's network. */
export type NetworkRule = 'none' | 'loopback' | 'full';

/** A validated profile with every default filled in. */
export interface SandboxProfile {
  /** Profile name (file name without `.json`). */
  name: string;
  /** Free text from the profile. */
  description: string;
  /** @default "none" */
  network: NetworkRule;
  /** Paths (with `${placeholders}` not yet expanded). */
  fs: { read: string[]; write: string[] };
  /** @default { children: false, workers: false } */
  processes: { children: boolean; workers: boolean };
  /** May the helper load native addons (`process.dlopen`)? @default false */
  addons: boolean;
  /**
   * The seccomp filter's choices: allow io_uring (refused by default: its requests bypass the filter),
   * and whether a refused call fails with EPERM ("error") or kills the helper with SIGSYS ("kill").
   * @default { ioUring: false, onViolation: "error" }
   */
  syscalls: { ioUring: boolean; onViolation: 'error' | 'kill' };
  /** Resource limits; absent means unlimited. */
  limits: { memoryMiB?: number; cpuSeconds?: number; openFiles?: number; processes?: number; fileSizeMiB?: number; scratchMiB?: number };
  /** Identity to run as when the broker is root. @default { uid: 65534, gid: 65534 } (nobody) */
  user: { uid: number; gid: number };
  /** Names of the broker's environment variables passed through. @default [] */
  env: string[];
  /** @default "strict" */
  enforcement: 'strict' | 'best-effort';
}

/** uid/gid a root broker drops helpers to unless the profile names another. */
export const DEFAULT_SANDBOX_USER = { uid: 65534, gid: 65534 } as const;

/** One problem found in a profile document. */
export interface ProfileProblem {
  /** JSON pointer of the offending field, e.g. "/limits/memoryMiB". */
  pointer: string;
  /** What is wrong with it. */
  message: string;
}

let validator: ValidateFunction | undefined;

function compiled(): ValidateFunction {
  // Own instance, allErrors on: profiles are local files and a user wants every problem at once.
  validator ??= new Ajv2020({ strict: true, allErrors: true }).compile(PROFILE_SCHEMA);
  return validator;
}

function problemOf(error: ErrorObject): ProfileProblem {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    const name = String(params['additionalProperty']);
    const allowed = allowedFields(error.schemaPath);
    const near = closestName(name, allowed);
    return { pointer: `${error.instancePath}/${escapePointer(name)}`, message: `unknown field "${name}" (allowed: ${allowed.join(', ')})${near === undefined ? '' : ` - did you mean "${near}"?`}` };
  }
  if (error.keyword === 'required') {
    return { pointer: `${error.instancePath}/${escapePointer(String(params['missingProperty']))}`, message: 'is required' };
  }
  if (error.keyword === 'enum') {
    return { pointer: error.instancePath || '/', message: `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
  }
  if (error.keyword === 'pattern' && error.instancePath.startsWith('/fs/')) {
    return { pointer: error.instancePath, message: 'must be an absolute path or start with a ${placeholder}, without ".." segments or commas' };
  }
  return { pointer: error.instancePath || '/', message: error.message ?? error.keyword };
}

function allowedFields(schemaPath: string): string[] {
  // schemaPath looks like "#/properties/limits/additionalProperties".
  let node: unknown = PROFILE_SCHEMA;
  for (const part of schemaPath.replace(/^#\//, '').split('/').slice(0, -1)) {
    node = (node as Record<string, unknown>)[part];
  }
  const properties = (node as { properties?: Record<string, unknown> }).properties ?? {};
  return Object.keys(properties).filter((k) => k !== '$schema');
}


/**
 * Checks a profile document without throwing.
 * @returns every problem found (empty when the document is valid)
 */
export function checkProfile(document: unknown): ProfileProblem[] {
  const validate = compiled();
  if (validate(document)) return [];
  return (validate.errors ?? []).map(problemOf);
}

/**
 * Validates a profile document and returns it with defaults filled in.
 * @param name - the profile's name, for messages
 * @param document - the parsed JSON of `sandbox-profiles/<name>.json`
 * @throws BulkheadError `ERR_INVALID_PROFILE` naming each bad field by JSON pointer
 *   (`error.data.pointer` is the first, `error.data.problems` all of them)
 */
export function parseProfile(name: string, document: unknown): SandboxProfile {
  const problems = checkProfile(document);
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.pointer} ${p.message}`).join('; ');
    throw bulkheadError('ERR_INVALID_PROFILE', `Sandbox profile "${name}" is not valid: ${list}. Fix the field(s) in sandbox-profiles/${name}.json (see docs/sandbox.md).`, { profile: name, pointer: problems[0]!.pointer, problems });
  }
  const doc = document as Partial<Omit<SandboxProfile, 'name' | 'syscalls'>> & { syscalls?: Partial<SandboxProfile['syscalls']> } & { fs?: { read?: string[]; write?: string[] }; processes?: { children?: boolean; workers?: boolean } };
  return {
    name,
    description: doc.description ?? '',
    network: doc.network ?? 'none',
    fs: { read: [...(doc.fs?.read ?? [])], write: [...(doc.fs?.write ?? [])] },
    processes: { children: doc.processes?.children ?? false, workers: doc.processes?.workers ?? false },
    addons: doc.addons ?? false,
    syscalls: { ioUring: doc.syscalls?.ioUring ?? false, onViolation: doc.syscalls?.onViolation ?? 'error' },
    limits: { ...doc.limits },
    user: doc.user === undefined ? { ...DEFAULT_SANDBOX_USER } : { uid: doc.user.uid, gid: doc.user.gid },
    env: [...(doc.env ?? [])],
    enforcement: doc.enforcement ?? 'strict',
  };
}
