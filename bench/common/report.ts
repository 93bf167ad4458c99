/**
 * What every scenario reports: the machine and its load, results files,
 * aligned tables, and the rows of the final target table.
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isNativeAccelerationEnabled } from 'cbor-x';
import { CONFIG } from './config.js';

/** bench/results/ in the source tree (not dist/). */
export const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
/** bench/fixtures/ in the source tree. */
export const FIXTURES = fileURLToPath(new URL('../../../bench/fixtures/', import.meta.url));

/** The machine a result was measured on. */
export interface Machine {
  date: string;
  node: string;
  cores: number;
  model: string;
  memGiB: number;
  /** 1, 5 and 15 minute load averages when the scenario started. */
  loadAtStart: number[];
  cborNativeAcceleration: boolean;
}

/** Snapshot of the machine now. */
export function machine(): Machine {
  const c = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    cores: c.length,
    model: c[0]?.model ?? 'unknown',
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    cborNativeAcceleration: isNativeAccelerationEnabled,
  };
}

/** One line of the final table: an issue target and where we stand. */
export interface TargetRow {
  scenario: string;
  target: string;
  /** The figure, as printed (e.g. "1.07× (29.1 / 27.2 µs)"). */
  measured: string;
  /** true: met; false: not met; null: informational (no target, or not measurable yet). */
  met: boolean | null;
}

/** What a scenario returns to the runner. */
export interface ScenarioResult {
  name: string;
  /** Everything measured, written to bench/results/<name>.json. */
  data: Record<string, unknown>;
  targets: TargetRow[];
}

/** Writes bench/results/<name>.json with the machine and config. */
export function writeResult(name: string, start: Machine, data: Record<string, unknown>): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const body = { scenario: name, ...start, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100), config: CONFIG, ...data };
  writeFileSync(`${RESULTS_DIR}${name}.json`, `${JSON.stringify(body, null, 2)}\n`);
}

/** Prints an aligned table: first column left, others right (or all left with `left`). */
export function printTable(headers: string[], rows: string[][], left = false): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** A number with `digits` decimals. */
export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
/** A ratio like "1.07×". */
export const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '-');
/** A rate like "182k". */
export const kilo = (n: number): string => (Number.isFinite(n) ? (n >= 10_000 ? `${Math.round(n / 1000)}k` : `${(n / 1000).toFixed(1)}k`) : '-');
/** "median [min–max]". */
export const withSpread = (s: { median: number; min: number; max: number }, digits = 1): string => `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;

/** Prints a scenario heading with the current load. */
export function heading(title: string): void {
  console.log(`\n== ${title} (load ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
}
