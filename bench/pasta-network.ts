/**
 * What pasta costs a `network: "full"` helper's traffic: one-byte TCP round trips and a bulk
 * download from a server on the host's 127.0.0.1, from a helper launched with the shipped
 * network-client profile (its own network namespace, pasta) and the same profile without pasta
 * (the host's namespace), interleaved launch by launch.
 *
 *   npm run build && node dist/bench/pasta-network.js [launches=5] [MiB=64]
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planLaunch, setHostProbeOverride, type HostProbeOverride, type SandboxLaunchPlan } from '../lib/sandbox/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = `${ROOT}bench/fixtures/tcp-probe.js`;
const launches = Number(process.argv[2] ?? 5);
const mib = Number(process.argv[3] ?? 64);

interface Result { rttMedianUs: number; rttP99Us: number; bytes: number; ms: number; mibPerS: number }

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve((server.address() as AddressInfo).port));
  });
}

async function servers(): Promise<{ port: number; close(): void }> {
  const chunk = Buffer.alloc(1 << 20, 7);
  const echo = createServer((s: Socket) => {
    s.setNoDelay(true);
    s.on('data', (d) => { if (!d.includes('q')) s.write(d); });
    s.on('error', () => undefined);
  });
  const bulk = createServer((s: Socket) => {
    let left = mib;
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!s.write(chunk)) { s.once('drain', pump); return; }
      }
      s.end();
    };
    s.on('error', () => undefined);
    pump();
  });
  // Two adjacent ports: the probe learns one number.
  for (;;) {
    const port = await listen(echo, 0);
    try {
      await listen(bulk, port + 1);
      return { port, close: () => { echo.close(); bulk.close(); } };
    } catch {
      echo.close();
    }
  }
}

async function plan(override: HostProbeOverride | undefined, port: number, host: string): Promise<SandboxLaunchPlan> {
  const document = { ...(JSON.parse(readFileSync(`${ROOT}sandbox-profiles/network-client.json`, 'utf8')) as object), enforcement: 'best-effort' };
  setHostProbeOverride(override);
  try {
    return await planLaunch({ service: 'bench', entry: PROBE, serviceDir: dirname(PROBE), implicitReads: [], nodePath: process.execPath, nodeArgs: [], env: { BULKHEAD_BENCH_PORT: String(port), BULKHEAD_BENCH_HOST: host }, profile: { name: 'network-client', document } });
  } finally {
    setHostProbeOverride(undefined);
  }
}

function run(p: SandboxLaunchPlan): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(p.command, p.args, { env: p.env, cwd: p.cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...(p.inheritFds ?? [])] });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += String(d)));
    (child.stdio[3] as Socket).on('data', (d: Buffer) => (out += String(d)));
    child.once('exit', () => {
      try {
        const r = JSON.parse(out) as Result & { error?: string };
        if (r.error !== undefined) reject(new Error(`probe: ${r.error}; ${err.slice(0, 300)}`));
        else resolve(r);
      } catch {
        reject(new Error(`no result: ${err.slice(0, 500)}`));
      }
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const srv = await servers();
  // pasta splices connections to 127.0.0.1 straight to the host's loopback (-T auto); the default
  // gateway's address reaches the host's loopback too, but through pasta's tap device (its L2 path).
  let gateway: string | undefined;
  try {
    gateway = /^default via (\S+)/m.exec(execFileSync('ip', ['route'], { encoding: 'utf8' }))?.[1];
  } catch {
    // no iproute2: the 127.0.0.1 variants only
  }
  const variants: Array<[string, HostProbeOverride | undefined, string]> = [
    ['network-client (own netns, pasta) to 127.0.0.1', undefined, '127.0.0.1'],
    ...(gateway !== undefined ? [[`network-client (own netns, pasta) to the gateway ${gateway} (tap)`, undefined, gateway] as [string, undefined, string]] : []),
    ['network-client without pasta (host netns) to 127.0.0.1', (p) => ({ ...p, pasta: null }), '127.0.0.1'],
  ];
  const results = new Map<string, Result[]>(variants.map(([n]) => [n, []]));
  for (let i = 0; i <= launches; i++) {
    for (const [name, override, host] of variants) {
      const p = await plan(override, srv.port, host);
      const r = await run(p);
      await p.cleanup();
      if (i > 0) results.get(name)!.push(r); // the first round warms up
    }
  }
  srv.close();
  console.log(`TCP to the host's 127.0.0.1 from a sandboxed helper, medians over ${launches} launches (500 round trips, ${mib} MiB each; node ${process.version})`);
  console.log('| variant | RTT median µs | RTT p99 µs | bulk MiB/s |');
  console.log('| --- | --- | --- | --- |');
  for (const [name] of variants) {
    const rs = results.get(name)!;
    console.log(`| ${name} | ${median(rs.map((r) => r.rttMedianUs))} | ${median(rs.map((r) => r.rttP99Us))} | ${median(rs.map((r) => r.mibPerS)).toFixed(0)} |`);
  }
}

await main();
