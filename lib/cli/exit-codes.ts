/**
 * Exit codes of the `bulkhead` command, the same for every subcommand.
 * @module
 */

/** What `bulkhead` exits with. */
export const EXIT_CODES = {
  /** Everything checked out (or the command did its job). */
  ok: 0,
  /** A validation problem or a usage error (bad arguments, unreadable input): fix the input. */
  invalid: 1,
  /** A bug in bulkhead itself: the stack trace is printed; please report it. */
  internal: 2,
} as const;

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];
