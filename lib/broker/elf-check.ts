/**
 * Whether a built binary can run on this host, read from its ELF header
 * rather than by running it (a spawn would cost the first launch a process
 * start): 64-bit, this CPU's byte order and machine, and, when dynamically
 * linked, an interpreter (the libc's loader) that exists here. A binary packed
 * on another machine (other architecture, or glibc vs musl) is refused.
 * @module
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';

/** ELF e_machine per Node's `process.arch` (64-bit lines only). */
const MACHINES: Readonly<Record<string, number>> = { x64: 62, arm64: 183, ppc64: 21, s390x: 22, riscv64: 243, loong64: 258, mips64el: 8 };

const PT_INTERP = 3;

/** Why `path` cannot run here, or null when its header says it can. */
export function elfProblem(path: string, arch: string = process.arch): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return (err as Error).message;
  }
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64 || head.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file';
    if (head[4] !== 2) return 'not a 64-bit binary';
    const little = head[5] === 1;
    if (little !== (endianness() === 'LE')) return 'another byte order';
    const u16 = (b: Buffer, o: number): number => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number): number => Number(little ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const machine = u16(head, 18);
    if (MACHINES[arch] !== machine) return `built for ELF machine ${machine}, this host is ${arch}`;
    const phoff = u64(head, 32);
    const phentsize = u16(head, 54);
    const phnum = u16(head, 56);
    const table = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, table, 0, table.length, phoff) < table.length) return 'truncated program headers';
    for (let i = 0; i < phnum; i++) {
      const entry = i * phentsize;
      if (u32(table, entry) !== PT_INTERP) continue;
      const size = u64(table, entry + 32);
      if (size > 4096) return 'a loader path of an absurd size';
      const name = Buffer.alloc(size);
      readSync(fd, name, 0, size, u64(table, entry + 8));
      const interpreter = name.toString('latin1').replace(/\0.*$/s, '');
      if (!existsSync(interpreter)) return `its loader ${interpreter} is not on this host`;
    }
    return null;
  } catch (err) {
    // A read that fails (a directory, EIO) or a header asking for an absurd size: not runnable here, never a throw
    // (the caller falls back to setpriv).
    return (err as Error).message;
  } finally {
    closeSync(fd);
  }
}
