// The exec guard's native stage is used only when it runs on this host (lib/sandbox/exec-guard.ts,
// nativeExecGuard): probed asynchronously beside the host probe's other checks, a corrupted or
// foreign binary, a program that does not answer with the stage's usage exit, or a missing file
// all mean "use the node stage". Positive control: the built stage itself is accepted.
import t from 'tap';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATIVE_STAGE, nativeExecGuard } from '../lib/sandbox/exec-guard.js';
import { probeHost } from '../lib/sandbox/host-probe.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-guard-probe-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const executable = (name: string, content: string | Buffer): string => {
  const path = join(work, name);
  writeFileSync(path, content);
  chmodSync(path, 0o755);
  return path;
};

t.test('a corrupted binary, a foreign one, a wrong exit, a missing file: the node stage serves', async (t) => {
  // An ELF header whose body is garbage: the kernel refuses to run it.
  const corrupt = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(4096, 0xa5)]);
  t.equal(await nativeExecGuard(executable('corrupt', corrupt)), null, 'corrupted ELF');
  // An ELF for another machine (e_machine = 0xB7, aarch64, on x86-64; or x86-64 elsewhere).
  if (existsSync(NATIVE_STAGE)) {
    const bytes = readFileSync(NATIVE_STAGE);
    bytes.writeUInt16LE(process.arch === 'arm64' ? 0x3e : 0xb7, 18);
    t.equal(await nativeExecGuard(executable('foreign', bytes)), null, 'another architecture\'s binary');
  }
  t.equal(await nativeExecGuard(executable('wrong-exit', '#!/bin/sh\nexit 1\n')), null, 'a program without the usage exit');
  t.equal(await nativeExecGuard(join(work, 'missing')), null, 'no file');
  t.equal(await nativeExecGuard(executable('text', 'not a program at all\n')), null, 'no interpreter line');
});

t.test('positive control: a program that answers with the stage\'s usage exit is used, and so is the built stage', async (t) => {
  const usage = executable('usage', '#!/bin/sh\nexit 120\n');
  t.equal(await nativeExecGuard(usage), usage);
  if (!existsSync(NATIVE_STAGE)) {
    t.comment('no native stage built here (no C compiler): only the program above is checked');
    return;
  }
  t.equal(await nativeExecGuard(), NATIVE_STAGE, 'the built stage runs here');
  t.equal((await probeHost()).kernel.execGuardNative, NATIVE_STAGE, 'the host probe reports it');
});
