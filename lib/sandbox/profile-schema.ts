/**
 * The JSON Schema (draft 2020-12) of a sandbox profile, kept as a TypeScript
 * constant so it is compiled and shipped with the package. `docs/sandbox.md`
 * describes every field; {@link ../profile.ts} validates documents against it.
 * @module
 */

/**
 * A path in a profile: absolute, or starting with a `${placeholder}` that the
 * sandbox expands at launch (`${serviceDir}`, `${scratch}`, or a name the
 * broker supplies, e.g. `${root}` or a manifest's `sandboxPaths` entry).
 * No `..` segments, no NUL, and no commas (Node's permission flags once split on them).
 */
const PROFILE_PATH_PATTERN = '^(?:/|\\$\\{[A-Za-z][A-Za-z0-9]*\\}(?:/|$))(?!.*(?:^|/)\\.\\.(?:/|$))[^\\u0000,]*$';

/** Largest value accepted for numeric limits (keeps prlimit arguments sane). */
const MAX_LIMIT = 1_048_576;

/** The smallest memory limit with which Node 20 and bulkhead's runtime still start (measured: 96 MiB of RLIMIT_DATA aborts node at start). */
export const MIN_MEMORY_MIB = 128;

/** The fewest open files a helper needs (node's own epoll/eventfd/pipes plus stdio and fd 3). */
export const MIN_OPEN_FILES = 32;

/** JSON Schema of `sandbox-profiles/*.json`. */
export const PROFILE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://bulkhead.dev/schemas/sandbox-profile.json',
  title: 'bulkhead sandbox profile',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    description: { type: 'string', maxLength: 2000 },
    network: { enum: ['none', 'loopback', 'full'] },
    fs: {
      type: 'object',
      additionalProperties: false,
      properties: {
        read: { type: 'array', maxItems: 256, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 4096, pattern: PROFILE_PATH_PATTERN } },
        write: { type: 'array', maxItems: 256, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 4096, pattern: PROFILE_PATH_PATTERN } },
      },
    },
    processes: {
      type: 'object',
      additionalProperties: false,
      properties: {
        children: { type: 'boolean' },
        workers: { type: 'boolean' },
      },
    },
    addons: { type: 'boolean' },
    syscalls: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ioUring: { type: 'boolean' },
        onViolation: { enum: ['error', 'kill'] },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        memoryMiB: { type: 'integer', minimum: MIN_MEMORY_MIB, maximum: MAX_LIMIT },
        cpuSeconds: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
        openFiles: { type: 'integer', minimum: MIN_OPEN_FILES, maximum: MAX_LIMIT },
        processes: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
        fileSizeMiB: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
        scratchMiB: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
      },
    },
    user: {
      type: 'object',
      additionalProperties: false,
      required: ['uid', 'gid'],
      properties: {
        uid: { type: 'integer', minimum: 1, maximum: 4_294_967_294 },
        gid: { type: 'integer', minimum: 1, maximum: 4_294_967_294 },
      },
    },
    env: {
      type: 'array',
      maxItems: 256,
      uniqueItems: true,
      items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 },
    },
    enforcement: { enum: ['strict', 'best-effort'] },
  },
} as const;
