/**
 * Remembers, per scheduled service, the last due time handled and the last
 * run, so a restarted broker can report (and, if persistent, make up for)
 * runs missed while it was down. Writes are atomic (temp file + rename): a
 * crash mid-write leaves the previous state, never half of one.
 * @module
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What is stored for one service. */
export interface StoredSchedule {
  /** Last due time handled (ran or skipped), ms since epoch. */
  lastDueAt: number;
}

/** Per-service schedule state under one directory. */
export class ScheduleStore {
  constructor(readonly dir: string) {}

  /** Reads a service's state; undefined when there is none or it is unreadable. */
  read(service: string): StoredSchedule | undefined {
    try {
      const value = JSON.parse(readFileSync(this.file(service), 'utf8')) as Partial<StoredSchedule>;
      return typeof value.lastDueAt === 'number' && Number.isFinite(value.lastDueAt) ? { lastDueAt: value.lastDueAt } : undefined;
    } catch {
      // Missing or corrupt state means "no history": nothing is reported missed.
      return undefined;
    }
  }

  /** Replaces a service's state atomically. */
  write(service: string, state: StoredSchedule): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(service);
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
    renameSync(temp, file);
  }

  private file(service: string): string {
    // Service names match NAME_PATTERN (no separators), so they are safe file names.
    return join(this.dir, `${service}.schedule.json`);
  }
}
