// Steady load for the restart and reload tests: callers that keep a service busy
// until stopped, counting outcomes and who answered, so a test can say "zero calls lost".
import { isBulkheadError } from 'bulkhead';
import type { TestBroker } from 'bulkhead/testing';

/** What the callers saw. */
export interface LoadStats {
  ok: number;
  failed: number;
  /** The first five failures, as `code: message`. */
  errors: string[];
  /** Pids that answered. */
  pids: Set<number>;
  /** Texts the answers carried (echo calls), to tell old code from new. */
  texts: Set<string>;
}

/** How each caller calls; the default echoes the service's name. */
export type LoadCall = (conn: ReturnType<TestBroker['broker']['connect']>, name: string) => Promise<{ pid: number; text?: string }>;

const echo: LoadCall = async (conn, name) => await conn.call('echo', { text: name }) as { pid: number; text: string };

/** Keeps `perService` callers per service busy with `call` until stopped. */
export function steadyLoad(kit: TestBroker, names: string[], perService: number, call: LoadCall = echo) {
  const stats: LoadStats = { ok: 0, failed: 0, errors: [], pids: new Set(), texts: new Set() };
  let running = true;
  const loops = names.flatMap((name) => {
    const conn = kit.broker.connect(name);
    return Array.from({ length: perService }, async () => {
      while (running) {
        try {
          const { pid, text } = await call(conn, name);
          stats.ok++;
          stats.pids.add(pid);
          if (text !== undefined) stats.texts.add(text);
        } catch (err) {
          stats.failed++;
          if (stats.errors.length < 5) stats.errors.push(isBulkheadError(err) ? `${err.code}: ${err.message}` : String(err));
        }
      }
    });
  });
  return {
    stats,
    /** Resolves once `n` more calls succeeded. */
    async after(n: number): Promise<void> {
      const target = stats.ok + n;
      while (stats.ok < target && running) await new Promise((resolve) => setImmediate(resolve));
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
