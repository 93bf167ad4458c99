/**
 * The entry of a prewarmed spare helper: node starts inside the sandbox, loads
 * bulkhead's runtime and imports the service's own entry module
 * (BULKHEAD_ENTRY), whose serve() loads the protocol and validators. The spare
 * then tells the broker it is warm and hands fd 3 to serve(), which says hello
 * at once: the broker checks that hello as it checks a fresh helper's, before
 * it counts the spare as warm. The spare answers nothing (and sends no events
 * or heartbeats) until the broker's own hello activates it, so a launch from a
 * spare costs the broker's hello and the call, in one write. The module's top
 * level runs when the spare starts, before it is needed
 * (docs/launch-policies.md says so).
 * @module
 */
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
// Through the package's own export, so this is the very module instance the service's entry imports.
import { deferServeUntilHandover, handOverBrokerSocket, HELPER_ENV, spareWire } from 'bulkhead/service';

const { encodeItem, encodeFrame } = spareWire;

const entry = process.env[HELPER_ENV.entry];
if (entry === undefined || entry === '') {
  process.stderr.write(`bulkhead prewarm: ${HELPER_ENV.entry} is not set; this module is started by a broker only.\n`);
  process.exit(70);
}

const socket = new Socket({ fd: 3, readable: true, writable: true });
// The broker closing fd 3 while the module loads means the spare is not needed.
socket.once('close', () => process.exit(0));
socket.pause();

// The broker's, not the service's: read before the service module loads.
const holderAddon = process.env[HELPER_ENV.mmHolder];
Reflect.deleteProperty(process.env, HELPER_ENV.mmHolder);

// The service module loads now; its serve() prepares the protocol and waits for the socket.
deferServeUntilHandover();
try {
  await import(pathToFileURL(entry).href);
} catch (err) {
  // Not a usable spare: the broker sees it die and launches plainly, which reports this properly.
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(70);
}
const holder = startMmHolder(holderAddon);
// Tell the broker this spare is warm (node, its sandbox and the service module are loaded), then let
// serve() take fd 3: its hello follows in the same burst of writes.
socket.write(encodeFrame(encodeItem(holder === undefined ? { t: 'warm' } : { t: 'warm', holder })));
socket.removeAllListeners('close');
handOverBrokerSocket(socket);

/**
 * The spare's side of the "mm holder" (issue 19; native/mm-holder/mm_holder.c says what it is and why): when the
 * broker asks for one (HELPER_ENV.mmHolder names the addon it built; only for an unsandboxed spare whose holder it
 * can check and reap, lib/broker/mm-holder-reaper.ts), the spare starts its holder right before it reports warm and
 * the warm frame carries the holder's pid. Anything that fails (no such file, dlopen refused, clone refused) means
 * no holder and no pid: the relaunch after a crash then takes the path it took before. In this file, not a module
 * of its own: a sandboxed spare reads one file less. The holder waits 20 ms after node's death before it exits, so
 * that its teardown of node's memory runs after the broker's takeover.
 */
function startMmHolder(addonPath: string | undefined): number | undefined {
  if (addonPath === undefined || addonPath === '') return undefined;
  try {
    const addon = { exports: {} as { start?: unknown } };
    process.dlopen(addon, addonPath);
    const start = addon.exports.start;
    const pid = typeof start === 'function' ? (start as (delayMs: number) => unknown)(20) : undefined;
    return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
