/**
 * The first call of a cold launch rides with the broker's hello.
 *
 * A fresh helper gets the broker's hello on its fd 3 as soon as it is spawned
 * (helper-process.ts), long before its own hello comes back. A caller that
 * waited for that hello cost a round trip: the helper said hello, then idled
 * until the broker had judged it and sent the call. Callers that are about to
 * send a call (a Connection's `call`/`stream`) instead get the new helper's
 * client once it is spawned, and their calls follow the broker's hello on the
 * same channel. Nothing is judged less:
 * - the helper runs no call before it has judged the broker's hello (its
 *   RpcServer refuses a call that comes first), and refuses a hello whose
 *   schema differs (the broker's hello carries no protocol document), so a
 *   helper that does not speak the manifest's protocol never runs the call;
 * - the broker takes no answer before the helper's hello matched (RpcClient
 *   refuses a reply, item or call error that comes first, ERR_PROTOCOL_MISMATCH),
 *   and a hello that does not match fails the channel, so the call rejects
 *   with the error the launch itself rejects with;
 * - a helper that exits or stays silent fails the call as the launch fails
 *   (helper-spawner.ts `whenReady` interrupts its client with that error).
 * Only a helper whose client already sent the broker's hello qualifies: a
 * prewarmed spare that is not yet warm gets its hello later, so its callers
 * wait for the launch as before. Everyone else (restart, kickstart, schedules)
 * still waits for the launch to finish.
 * @module
 */
import type { CallClient } from '../connection/connection.js';
import type { RpcClient } from '../connection/rpc-client.js';

/** Callers waiting for the client of the helper being launched. */
export class EarlyCallers {
  private waiting: Array<(client: CallClient) => void> = [];
  /** The launching helper's client and its launch, once it is spawned with the broker's hello sent; until the launch settles. */
  private spawnedClient: CallClient | undefined;
  private launching: Promise<RpcClient> | undefined;

  /** Resolves once the launching helper is spawned, or as `launching` settles (then without `launched`), whichever is first. */
  wait(launching: Promise<RpcClient>): Promise<CallClient> {
    this.launching = launching;
    if (this.spawnedClient !== undefined) return Promise.resolve(this.spawnedClient);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      launching.then((rpc) => resolve({ rpc }), reject);
    });
  }

  /** The launch spawned a helper: its waiting callers may send their calls now, if the broker's hello is on its channel. */
  spawned(rpc: RpcClient): void {
    if (!rpc.helloSent || this.launching === undefined) return;
    this.spawnedClient = { rpc, launched: this.launching };
    for (const resolve of this.waiting.splice(0)) resolve(this.spawnedClient);
  }

  /** The launch settled (its helper is ready, or exited): later callers get a ready client or the launch's failure, as before. */
  settled(): void {
    this.spawnedClient = undefined;
    this.launching = undefined;
    this.waiting = [];
  }
}
