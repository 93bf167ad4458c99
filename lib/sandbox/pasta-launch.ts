/**
 * The broker's half of a pasta launch: the two pipes bubblewrap and the
 * broker meet on (child ends passed at the fds compile.ts named, broker ends
 * kept by the {@link PastaAttachment}), created close-on-exec so no other
 * child inherits them.
 * @module
 */
import { closeSync } from 'node:fs';
import { loadFfi } from './ffi.js';
import type { HostProbe } from './host-probe.js';
import type { PastaFds } from './kernel-layers.js';
import { PastaAttachment } from './pasta.js';

const O_CLOEXEC = 0o2000000;

/** One launch's pasta wiring. */
export interface PastaLaunch {
  /** Child-side fds, in the order of bubblewrap's `--info-fd` and `--block-fd`: the info pipe's write end, the block pipe's read end. */
  childFds: [number, number];
  attachment: PastaAttachment;
  /** Stops pasta and closes every fd of the wiring. Idempotent; settles once pasta has exited. */
  stop(): Promise<void>;
}

/**
 * Creates the pipes and starts waiting for bubblewrap's report.
 * @throws Error when koffi is missing (compile.ts plans pasta only when it loads) or pipe2 fails
 */
export function openPastaPipes(probe: HostProbe, fds: PastaFds): PastaLaunch {
  const ffi = loadFfi();
  if (!ffi.ok) throw new Error(ffi.problem);
  if (probe.pasta === null) throw new Error('pasta is not installed');
  const info = ffi.libc.pipe2(O_CLOEXEC);
  const block = info === null ? null : ffi.libc.pipe2(O_CLOEXEC);
  if (info === null || block === null) {
    const errno = ffi.libc.errno();
    if (info !== null) info.forEach((fd) => closeSync(fd));
    throw new Error(`pipe2 failed: errno ${errno}`);
  }
  const attachment = new PastaAttachment({ pasta: probe.pasta, setpriv: probe.setpriv, isRoot: probe.isRoot, infoFd: info[0], blockFd: block[1], blockChildFd: fds.block });
  let open = true;
  return {
    childFds: [info[1], block[0]],
    attachment,
    stop: () => {
      const exited = attachment.stop();
      if (open) {
        open = false;
        closeSync(info[1]);
        closeSync(block[0]);
      }
      return exited;
    },
  };
}
