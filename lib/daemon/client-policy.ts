/**
 * Who may connect: a service's `clients` (or the daemon's `controlClients`)
 * checked against what the daemon verified — the certificate's identity name
 * and the kernel's uid and gid of the connecting process. Like a D-Bus policy's
 * `user=` / `group=` rules, but every daemon client authenticates with a
 * certificate first, so a uid rule narrows or widens *which* certified clients
 * get in, never admits an uncertified one.
 *
 * Entry forms:
 * - `"app-a"`: the identity `app-a`, from any uid; `"*"`: any identity the CA issued;
 * - `"uid:1000"` / `"gid:100"`: any identity, from a process with that uid / gid;
 * - `"app-a@uid:1000"`, `"*@gid:100"`: both must hold.
 *
 * The gid is the process's effective gid as `SO_PEERCRED` reports it
 * (supplementary groups are not seen).
 * @module
 */

/** What the daemon verified about a peer. */
export interface VerifiedPeer {
  name: string;
  uid: number;
  gid: number;
}

export { CLIENT_ENTRY_PATTERN } from '../broker/manifest.js';

const ENTRY = /^(?:(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@(uid|gid):([0-9]{1,10}))?|(uid|gid):([0-9]{1,10}))$/;

/** True when one entry of `entries` admits `peer`. Unparseable entries admit nobody. */
export function admits(entries: readonly string[], peer: VerifiedPeer): boolean {
  return entries.some((entry) => entryAdmits(entry, peer));
}

function entryAdmits(entry: string, peer: VerifiedPeer): boolean {
  const m = ENTRY.exec(entry);
  if (m === null) return false;
  const name = m[1];
  const kind = m[2] ?? m[4];
  const id = m[3] ?? m[5];
  if (name !== undefined && name !== '*' && name !== peer.name) return false;
  if (kind === undefined) return true;
  return (kind === 'uid' ? peer.uid : peer.gid) === Number(id);
}
