/**
 * A tag naming one broker process and its start, carried in the names of the
 * scratch dirs and cgroups it makes, so the next broker can tell a dead
 * broker's leftovers (SIGKILL leaves them) from a live one's, despite pid reuse.
 * @module
 */
import { readFileSync } from 'node:fs';

let ownTag: string | undefined;

/** A tag unique to this broker process and its start: a dead broker's cgroups and scratch dirs can be told from a live one's. */
export function brokerTag(pid: number = process.pid): string | null {
  if (pid === process.pid && ownTag !== undefined) return ownTag;
  try {
    // Field 22 of /proc/<pid>/stat (start time in clock ticks); the command may contain spaces, so count from ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tag = `${pid}-${fields[19]}`;
    if (pid === process.pid) ownTag = tag;
    return tag;
  } catch {
    return null;
  }
}

/** True when the broker the tag names is still running. */
export function brokerAlive(tag: string): boolean {
  const match = /^(\d+)-(\d+)$/.exec(tag);
  return match !== null && brokerTag(Number(match[1])) === tag;
}

