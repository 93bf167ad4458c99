/**
 * What a daemon connection costs before its first call: the kernel credential
 * lookup (SO_PEERCRED + SO_PEERPIDFD through koffi) per accepted socket, in this
 * process, and the whole handshake (connect → challenge → auth with a PSS
 * signature → ok) against a daemon in another process.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientIdentity } from 'bulkhead';
import { HandshakeReader, writeHandshake } from '../../lib/daemon/handshake-io.js';
import { closePeerPidfd, loadPeerCredentials, peerCredentials } from '../../lib/daemon/peer-credentials.js';
import { proofPayload, signProof } from '../../lib/identity/proof.js';
import { percentile } from '../common/stats.js';

/** µs per lookup (median, p99) over `n` accepted sockets, and how long loading koffi took. */
export async function credentialLookupCost(n: number): Promise<{ medianUs: number; p99Us: number; loadMs: number; pidfd: boolean }> {
  const t0 = performance.now();
  loadPeerCredentials();
  const loadMs = performance.now() - t0;
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-cred-'));
  const server = createServer();
  const path = join(dir, 's.sock');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const samples: number[] = [];
  let pidfd = false;
  try {
    for (let i = 0; i < n; i++) {
      const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
      const client = createConnection(path);
      const socket = await accepted;
      const start = process.hrtime.bigint();
      const cred = peerCredentials(socket);
      closePeerPidfd(cred.pidfd);
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
      pidfd ||= cred.pidfd !== undefined;
      socket.destroy();
      client.destroy();
    }
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const sorted = Float64Array.from(samples).sort();
  return { medianUs: percentile(sorted, 0.5), p99Us: percentile(sorted, 0.99), loadMs, pidfd };
}

/** ms from connect() to the daemon's `ok` (median, p90) over `n` handshakes, and the client's signing share. */
export async function handshakeTime(socketPath: string, identity: ClientIdentity, service: string, n: number): Promise<{ medianMs: number; p90Ms: number; signMedianMs: number }> {
  const total: number[] = [];
  const signing: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const socket = createConnection(socketPath);
    const reader = new HandshakeReader(socket);
    const challenge = await reader.next(10_000);
    const s0 = performance.now();
    const sig = signProof(identity.keyPem, proofPayload(challenge['nonce'] as Uint8Array, { socketPath, daemonId: challenge['daemon'] as string, clientName: identity.name }));
    signing.push(performance.now() - s0);
    writeHandshake(socket, { t: 'auth', service, name: identity.name, cert: identity.certPem, sig });
    const answer = await reader.next(10_000);
    if (answer['t'] !== 'ok') throw new Error(`handshake refused: ${JSON.stringify(answer)}`);
    total.push(performance.now() - start);
    socket.destroy();
  }
  const sorted = Float64Array.from(total).sort();
  return { medianMs: percentile(sorted, 0.5), p90Ms: percentile(sorted, 0.9), signMedianMs: percentile(Float64Array.from(signing).sort(), 0.5) };
}
