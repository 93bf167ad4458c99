// What the `bulkhead types` tests share: a scratch dir where `'bulkhead'`
// resolves to the built package, running node scripts (the CLI, tsc), and one
// tsc run over a good program and several bad ones, each bad one expected to
// fail with exactly one error code.
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers.js';

const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** How a node script ended. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a node script (e.g. the CLI) from the repo root. */
export function runNode(file: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { cwd: REPO_ROOT }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/**
 * A temp dir inside the repo, so `import ... from 'bulkhead'` in the programs
 * resolves through the package's self-reference to the built dist/ (no paths mapping).
 */
export function repoTempDir(t: Test, prefix: string): string {
  const parent = join(REPO_ROOT, 'dist', 'test-tmp');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A program that must fail to compile with exactly `code` (e.g. TS2322). */
export interface BadProgram {
  name: string;
  code: string;
  body: string;
}

/** tsc's exit code and the error codes it gave, by file name (bad programs are `bad-<name>.ts`). */
export interface TypeCheck {
  code: number;
  errors: Map<string, string[]>;
}

/**
 * Writes a strict NodeNext tsconfig, `good.ts` and one file per bad program
 * (`prelude` + body) into `dir`, beside the generated types, and type-checks
 * them all in one tsc run: each file's errors are told apart by file name.
 */
export async function typeCheck(dir: string, programs: { good: string; prelude: string; bad: BadProgram[]; lib?: string[] }): Promise<TypeCheck> {
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', lib: programs.lib ?? ['ES2023', 'ESNext.Disposable'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
    include: ['*.ts'],
  }));
  writeFileSync(join(dir, 'good.ts'), programs.good);
  for (const bad of programs.bad) writeFileSync(join(dir, `bad-${bad.name}.ts`), `${programs.prelude}${bad.body}\n`);
  const tsc = await runNode(TSC, ['-p', join(dir, 'tsconfig.json'), '--pretty', 'false']);
  const errors = new Map<string, string[]>();
  for (const match of tsc.stdout.matchAll(/^(?:.*[\\/])?([^\\/(]+\.ts)\(\d+,\d+\): error (TS\d+):/gm)) {
    errors.set(match[1]!, [...(errors.get(match[1]!) ?? []), match[2]!]);
  }
  return { code: tsc.code, errors };
}
