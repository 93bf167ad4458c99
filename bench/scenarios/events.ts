/**
 * Events service → client: one call asks the service for a burst of N small
 * events (the echo message) and then answers; events/s = N / (call → reply,
 * all N events received). bulkhead validates each event at the client.
 * @module
 */
import { loadavg } from 'node:os';
import { CONFIG } from '../common/config.js';
import { heading, kilo, machine, printTable, ratio, writeResult, type ScenarioResult } from '../common/report.js';
import { spread, type Spread } from '../common/stats.js';
import { bulkheadTransport, forkTransport, rawCborTransport, workerTransport, type Transport } from '../common/transports.js';

const NAME = 'events';

async function burst(t: Transport, count: number): Promise<number> {
  const before = t.events;
  const start = performance.now();
  await t.call('burst', { count });
  const seconds = (performance.now() - start) / 1000;
  if (t.events - before !== count) throw new Error(`${t.name} delivered ${t.events - before} events of ${count}`);
  return count / seconds;
}

/** Runs the scenario. */
export async function runEvents(): Promise<ScenarioResult> {
  const start = machine();
  heading(`events service → client: ${CONFIG.rounds} interleaved rounds of a ${CONFIG.events}-event burst`);
  const transports: Transport[] = [];
  try {
    transports.push(await bulkheadTransport('bulkhead (validated)'));
    transports.push(await forkTransport('json'));
    transports.push(await rawCborTransport(false));
    transports.push(await workerTransport());
    for (const t of transports) await burst(t, Math.min(CONFIG.events, 5000));
    const rates = new Map<Transport, number[]>(transports.map((t) => [t, []]));
    for (let round = 0; round < CONFIG.rounds; round++) {
      for (const t of transports.map((_, i) => transports[(i + round) % transports.length]!)) rates.get(t)!.push(await burst(t, CONFIG.events));
    }
    const bulk = rates.get(transports[0]!)!;
    const summary: Record<string, { eventsPerSec: Spread; ratio?: Spread }> = {};
    for (const [t, r] of rates) summary[t.name] = { eventsPerSec: spread(r), ...(t === transports[0] ? {} : { ratio: spread(bulk.map((v, i) => v / r[i]!)) }) };
    printTable(['transport', 'events/s [min–max]', 'bulkhead/it'], transports.map((t) => {
      const s = summary[t.name]!;
      return [t.name, `${kilo(s.eventsPerSec.median)} [${kilo(s.eventsPerSec.min)}–${kilo(s.eventsPerSec.max)}]`, s.ratio === undefined ? '' : ratio(s.ratio.median)];
    }));
    writeResult(NAME, start, { summary });
    const json = summary['fork IPC json']!;
    const floor = summary['socketpair + cbor-x']!;
    return {
      name: NAME,
      data: { summary },
      targets: [{
        scenario: NAME,
        target: 'events/s service → client ≥ 1.0× raw socketpair + cbor-x',
        measured: `${ratio(floor.ratio!.median)} (${kilo(summary[transports[0]!.name]!.eventsPerSec.median)} vs ${kilo(floor.eventsPerSec.median)}/s; per-round ${floor.ratio!.min.toFixed(2)}–${floor.ratio!.max.toFixed(2)}); fork IPC JSON ${ratio(json.ratio!.median)}; load ${loadavg()[0]!.toFixed(1)}`,
        met: floor.ratio!.median >= 1.0,
      }],
    };
  } finally {
    for (const t of transports) await t.close().catch(() => undefined);
  }
}
