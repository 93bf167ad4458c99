/**
 * What a daemon client may learn about a helper's failure. A helper's stderr
 * (its thrown line, stack frames with the server's paths, whatever it printed)
 * belongs to the daemon's host: the embedded broker's owner sees it in
 * `ERR_LAUNCH_FAILED` and `ERR_INTERRUPTED`, a remote client gets the exit's
 * code, signal and reason and is pointed to `bulkhead logs`, where the
 * daemon's administrator finds the lines.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';

function exitSummary(data: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof data['reason'] === 'string') parts.push(data['reason']);
  if (typeof data['signal'] === 'string') parts.push(`signal ${data['signal']}`);
  else if (typeof data['exitCode'] === 'number') parts.push(`exit code ${String(data['exitCode'])}`);
  return parts.length === 0 ? 'no exit status' : parts.join(', ');
}

/**
 * `error` as a daemon client should see it: without the helper's stderr lines
 * (`data.stderrTail`, `data.thrown` and the message) when it carries them; unchanged otherwise.
 */
export function forDaemonClient(error: BulkheadError, service: string): BulkheadError {
  const data = error.data as Record<string, unknown>;
  if (!('stderrTail' in data) && !('thrown' in data)) return error;
  const rest = Object.fromEntries(Object.entries(data).filter(([key]) => key !== 'stderrTail' && key !== 'thrown'));
  const logs = `its error output stays on the daemon's host, where its administrator finds it with \`bulkhead logs ${service}\``;
  if (error.code === 'ERR_LAUNCH_FAILED') {
    return bulkheadError('ERR_LAUNCH_FAILED', `${service} could not start (${exitSummary(rest)}); ${logs}.`, rest);
  }
  if (error.code === 'ERR_INTERRUPTED') {
    return bulkheadError('ERR_INTERRUPTED', `${service} stopped while the call was in flight (${exitSummary(rest)}); call again. If it keeps stopping, ${logs}.`, rest);
  }
  return bulkheadError(error.code, `${service} failed (${exitSummary(rest)}); ${logs}.`, rest as never);
}
