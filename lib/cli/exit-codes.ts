/**
 * Exit codes of the `bulkhead` command, the same for every subcommand.
 * @module
 */

/** What `bulkhead` exits with. */
export const EXIT_CODES = {
  /** Everything checked out (or the command did its job). */
  ok: 0,
  /**
   * The input or the request is at fault: a validation problem, a usage error
   * (bad arguments, unreadable input), or the daemon refused the request
   * (ERR_NOT_PERMITTED, ERR_UNKNOWN_SERVICE, a certificate it does not
   * trust, a helper that fails to launch). The message says what to fix.
   */
  invalid: 1,
  /** A bug in bulkhead itself: the stack trace is printed; please report it. */
  internal: 2,
  /** No daemon answers on the socket (none running, wrong --socket), or it went away mid-command. */
  unreachable: 3,
} as const;

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** The exit-code table printed at the end of `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  validation problem, usage error, or a request the daemon refused (the message says what to fix)
  2  internal error (a bug in bulkhead: please report it with the printed stack)
  3  daemon unreachable (not running, wrong --socket) or lost during the command`;
