/**
 * What `bulkhead logs` reads: every line a helper printed on stdout or
 * stderr, tagged with its service and pid, and the daemon's own events
 * (launch, exit, throttle, failure, denial, kickstart, stop, reload) as
 * structured entries, in one sequence.
 *
 * Memory is bounded: each service keeps its last {@link LOG_STORE_DEFAULTS.perService}
 * entries in its own ring (a chatty helper cannot push another's lines out),
 * and entries that belong to no service (a denied client, a reload) share a
 * ring of the same size. Lines are already cut to 4 KiB by the broker.
 *
 * Every entry has a sequence number, increasing across all rings. A reader
 * keeps the last number it saw (its cursor) and asks for what came after it;
 * {@link LogStore.wait} resolves as soon as something newer arrives, which is
 * how `bulkhead logs -f` follows without polling in a tight loop (a long
 * poll: the `logs` control method with `waitMs`). When a ring overwrote
 * entries the reader had not seen yet, the answer says so (`missed`).
 * @module
 */

/** Defaults of {@link LogStore}. */
export const LOG_STORE_DEFAULTS = {
  /** Entries kept per service (and for the daemon's own ring). */
  perService: 1000,
  /** Entries one query returns at most. */
  maxQuery: 5000,
} as const;

/** One entry: a helper's line, or one of the daemon's events. */
export interface LogEntry {
  /** Sequence number, increasing across the whole store (starts at 1). */
  seq: number;
  /** Milliseconds since the Unix epoch. */
  time: number;
  /** The service it belongs to, or null for daemon-wide events. */
  service: string | null;
  /** The helper's pid (for a line; for an event, the pid it is about), or null. */
  pid: number | null;
  /** Where it came from: a helper's stdout or stderr, or a daemon event. */
  stream: 'stdout' | 'stderr' | 'event';
  /** The line as printed, or a one-line description of the event. */
  text: string;
  /** For events: the structured entry (`{ event, ... }`). */
  data?: Record<string, unknown>;
}

/** What {@link LogStore.query} returns. */
export interface LogQueryResult {
  /** Matching entries, oldest first. */
  entries: LogEntry[];
  /** Pass as `after` to get what comes next: the last entry's seq, or the store's newest seq when nothing matched. */
  cursor: number;
  /** True when entries after `after` that matched were already overwritten (the reader fell behind a ring). */
  missed: boolean;
}

/** Options of {@link LogStore.query}. */
export interface LogQuery {
  /** Only this service's entries. @default every service and the daemon's own */
  service?: string | undefined;
  /** Only entries with a larger seq; without it, the last `limit` entries. */
  after?: number | undefined;
  /** At most this many entries. @default 100 */
  limit?: number | undefined;
  /** Only the daemon's events (stream "event"), no helper output. @default false */
  events?: boolean | undefined;
}

class Ring {
  private readonly items: LogEntry[] = [];
  /** Seq of the newest entry pushed out of this ring (0: none yet). */
  lastEvictedSeq = 0;

  constructor(private readonly capacity: number) {}

  push(entry: LogEntry): void {
    this.items.push(entry);
    if (this.items.length > this.capacity) this.lastEvictedSeq = this.items.shift()!.seq;
  }

  /** Entries with seq > after. */
  after(after: number): LogEntry[] {
    // Entries are in seq order: binary search the first one past `after`.
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.items.slice(lo);
  }
}

/** The daemon's bounded log. */
export class LogStore {
  private readonly rings = new Map<string | null, Ring>();
  private seq = 0;
  private readonly waiters = new Set<{ service: string | undefined; wake(): void }>();
  private readonly perService: number;

  /**
   * @param options.perService - entries kept per service
   * @param options.sink - receives every entry as it is added (e.g. to append it to a file)
   */
  constructor(options: { perService?: number; sink?: (entry: LogEntry) => void } = {}) {
    this.perService = options.perService ?? LOG_STORE_DEFAULTS.perService;
    if (!Number.isInteger(this.perService) || this.perService < 1) throw new RangeError('perService must be a positive integer');
    this.sink = options.sink;
  }

  private readonly sink: ((entry: LogEntry) => void) | undefined;

  /** The newest seq (0 when empty). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Adds a line a helper printed. */
  line(service: string, pid: number, stream: 'stdout' | 'stderr', text: string): LogEntry {
    return this.add({ service, pid, stream, text });
  }

  /** Adds a daemon event; `text` is its one-line description. */
  event(service: string | null, pid: number | null, text: string, data: Record<string, unknown>): LogEntry {
    return this.add({ service, pid, stream: 'event', text, data });
  }

  /** True when entries of `service` are kept. */
  knows(service: string): boolean {
    return this.rings.has(service);
  }

  /** Forgets a removed service's ring. */
  forget(service: string): void {
    this.rings.delete(service);
  }

  /** Entries after a cursor (or the last few), oldest first. */
  query(query: LogQuery = {}): LogQueryResult {
    const limit = Math.min(Math.max(1, query.limit ?? 100), LOG_STORE_DEFAULTS.maxQuery);
    const rings = query.service === undefined ? [...this.rings.entries()] : [[query.service, this.rings.get(query.service)] as const];
    const after = query.after ?? 0;
    let missed = false;
    let all: LogEntry[] = [];
    for (const [, ring] of rings) {
      if (ring === undefined) continue;
      const found = ring.after(after);
      all = all.concat(query.events === true ? found.filter((e) => e.stream === 'event') : found);
      if (query.after !== undefined && ring.lastEvictedSeq > after) missed = true;
    }
    all.sort((a, b) => a.seq - b.seq);
    const entries = query.after === undefined ? all.slice(-limit) : all.slice(0, limit);
    const cursor = entries.length > 0 ? entries[entries.length - 1]!.seq : this.seq;
    return { entries, cursor, missed };
  }

  /**
   * Resolves once an entry newer than `after` (of `service`, when given) exists,
   * after `timeoutMs` at the latest, or when `signal` aborts.
   */
  wait(after: number, timeoutMs: number, service?: string, signal?: AbortSignal): Promise<void> {
    if (this.hasAfter(after, service) || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        service,
        wake: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', waiter.wake);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, timeoutMs);
      signal?.addEventListener('abort', waiter.wake, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Wakes every waiter (the daemon is closing). */
  close(): void {
    for (const waiter of [...this.waiters]) waiter.wake();
  }

  private hasAfter(after: number, service: string | undefined): boolean {
    if (service === undefined) return this.seq > after;
    const ring = this.rings.get(service);
    return ring !== undefined && ring.after(after).length > 0;
  }

  private add(fields: Omit<LogEntry, 'seq' | 'time'>): LogEntry {
    const entry: LogEntry = { seq: ++this.seq, time: Date.now(), ...fields };
    let ring = this.rings.get(entry.service);
    if (ring === undefined) {
      ring = new Ring(this.perService);
      this.rings.set(entry.service, ring);
    }
    ring.push(entry);
    for (const waiter of [...this.waiters]) {
      if (waiter.service === undefined || waiter.service === entry.service) waiter.wake();
    }
    this.sink?.(entry);
    return entry;
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** " (uid 1000, gid 1000, pid 4242)" from a connection entry's kernel credentials, or "" when it has none. */
function peerText(entry: Record<string, unknown>): string {
  return typeof entry['uid'] === 'number' ? ` (uid ${entry['uid']}, gid ${str(entry['gid'])}, pid ${str(entry['peerPid'])})` : '';
}

/**
 * A one-line description of a daemon log entry, for `bulkhead logs`:
 * "launched pid 4242", "exited with code 3 (memory limit (128 MiB))",
 * "denied guest: ERR_NOT_PERMITTED ...". Unknown events print their fields.
 */
export function describeLogEvent(entry: Record<string, unknown> & { event: string }): string {
  const { event } = entry;
  switch (event) {
    case 'launch':
      return `launched pid ${str(entry['pid'])}`;
    case 'exit': {
      const how = entry['signal'] !== null && entry['signal'] !== undefined ? `was killed by ${str(entry['signal'])}` : `exited with code ${str(entry['code'])}`;
      const reason = typeof entry['reason'] === 'string' ? ` (${entry['reason']})` : '';
      return `${how}${reason}${entry['requested'] === false ? ', unrequested' : ''}`;
    }
    case 'takeover':
      return `prewarmed spare pid ${str(entry['pid'])} took over from pid ${str(entry['replaced'])} (its exit follows)`;
    case 'throttled':
      return 'throttled: waiting out the relaunch backoff (launch.throttleMs, growing after each crash in a row)';
    case 'failed':
      return `failed: ${typeof entry['message'] === 'string' ? entry['message'] : 'crash-loop breaker tripped'}`;
    case 'denied':
      return `denied ${str(entry['client'])}${entry['service'] === null || entry['service'] === undefined ? '' : ` access to ${str(entry['service'])}`}: ${str(entry['code'])}${typeof entry['message'] === 'string' ? ` ${entry['message']}` : ''}`;
    case 'kickstart':
      return `kickstart${entry['restart'] === true ? ' --restart' : ''} by ${str(entry['by'])}`;
    case 'stop':
      return `stop by ${str(entry['by'])}`;
    case 'reload':
      return `reload: added [${(entry['added'] as string[] | undefined)?.join(', ') ?? ''}], removed [${(entry['removed'] as string[] | undefined)?.join(', ') ?? ''}], replaced [${(entry['replaced'] as string[] | undefined)?.join(', ') ?? ''}]${Array.isArray(entry['editedProfiles']) && entry['editedProfiles'].length > 0 ? `, profile edited [${(entry['editedProfiles'] as string[]).join(', ')}]` : ''}${Array.isArray(entry['relaunched']) ? `, relaunched [${(entry['relaunched'] as string[]).join(', ')}]` : ''}`;
    case 'reload-failed':
      return `reload refused, nothing changed: ${str(entry['code'])} ${str(entry['message'])}`;
    case 'restart':
      return `restart (zero downtime) by ${str(entry['by'])}`;
    case 'connect':
      return `client ${str(entry['client'])} connected${peerText(entry)} (id range ${str(entry['range'])})`;
    case 'disconnect':
      return entry['code'] === null ? `client ${str(entry['client'])}${peerText(entry)} disconnected` : `client ${str(entry['client'])}${peerText(entry)} cut off: ${str(entry['code'])} ${str(entry['message'])}`;
    case 'refused':
      return `refused ${entry['client'] === null || entry['client'] === undefined ? 'a connection' : str(entry['client'])}${peerText(entry)}${entry['service'] === null || entry['service'] === undefined ? '' : ` to ${str(entry['service'])}`}: ${str(entry['code'])}${typeof entry['reason'] === 'string' ? ` (${entry['reason']})` : ''} ${str(entry['message'])}`;
    case 'job':
      return `scheduled run (${str(entry['trigger'])}): ${str(entry['result'])}${entry['error'] === undefined ? '' : ` ${str(entry['error'])}`}, ${str(entry['durationMs'])} ms`;
    case 'listening':
      return `listening on ${str(entry['socketPath'])} (daemon pid ${str(entry['pid'])})`;
    default: {
      const rest = Object.entries(entry).filter(([k]) => k !== 'event' && k !== 'service').map(([k, v]) => `${k}=${str(v)}`);
      return rest.length === 0 ? event : `${event} ${rest.join(' ')}`;
    }
  }
}
