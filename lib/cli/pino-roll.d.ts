// pino-roll ships no types; this is the part `bulkhead daemon --log-file` uses.
declare module 'pino-roll' {
  import type { Writable } from 'node:stream';

  /** Options of pino-roll (see its README). */
  interface PinoRollOptions {
    /** Base path; files are named `<base>.<n><extension>`. */
    file: string;
    /** Roll when the file reaches this size: a number of MB, or "10k" / "10m" / "1g". */
    size?: string | number;
    /** Roll "daily", "hourly", or every so many ms. */
    frequency?: string | number;
    /** Extension after the number. @default ".log" */
    extension?: string;
    /** Keep a `current.log` symlink to the file in use. */
    symlink?: boolean;
    /** Keep this many rolled files besides the current one. */
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    /** Create the directory. */
    mkdir?: boolean;
  }

  /** A SonicBoom stream writing to the current file. */
  interface RollStream extends Writable {
    /** The path being written. */
    readonly file: string;
    flushSync(): void;
  }

  export default function roll(options: PinoRollOptions): Promise<RollStream>;
}
