/**
 * Run with --expose-gc by the memory scenario: measures this process's RSS
 * and heap after importing bulkhead, after registering N idle services, and
 * after opening M connections to them; prints one JSON line.
 * @module
 */
import { FIXTURES } from '../common/report.js';

const services = Number(process.argv[2] ?? 100);
const connections = Number(process.argv[3] ?? 1000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function snapshot(): { rss: number; heapUsed: number; external: number } {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers };
}

const empty = snapshot();
const { Broker } = await import('bulkhead');
const imported = snapshot();
const broker = new Broker({ root: FIXTURES });
// The first registration also loads and compiles the protocol (once per protocol, not per service).
broker.register({ name: 'echo-first', entry: './echo-service.js', protocol: 'com.bench.echo' });
const first = snapshot();
for (let i = 0; i < services; i++) broker.register({ name: `echo-${i}`, entry: './echo-service.js', protocol: 'com.bench.echo' });
const registered = snapshot();
const held = [];
for (let i = 0; i < connections; i++) held.push(broker.connect(`echo-${i % services}`));
const connected = snapshot();
process.stdout.write(`${JSON.stringify({ empty, imported, first, registered, connected, held: held.length })}\n`);
await broker.close();
