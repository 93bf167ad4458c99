/**
 * The environment variables the `bulkhead` command reads as defaults for its
 * options (commander's `.env()`), in one place because several commands
 * share them: the daemon and every client of it must agree on where the
 * socket and the state directory are. Not the helper environment: what a
 * broker sets for its helpers is lib/wire/helper-env.ts.
 * @module
 */

/** Variable name of each CLI setting, by meaning. */
export const CLI_ENV = {
  /** The daemon's socket (`--socket`): where `bulkhead daemon` listens and its clients connect. */
  socket: 'BULKHEAD_SOCKET',
  /** The daemon's state directory (`--state-dir`): CA, identities, schedule state. */
  stateDir: 'BULKHEAD_STATE_DIR',
  /** `bulkhead daemon --http`: the address of /metrics and the Activity Monitor. */
  http: 'BULKHEAD_HTTP',
} as const;
