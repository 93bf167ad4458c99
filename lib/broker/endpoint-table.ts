/**
 * The broker's endpoint table (XPC endpoints, Mojo pipes): a helper asks its
 * broker to mint an endpoint for a service its manifest `connects` to, bound
 * to one receiver; the receiver opens a connection from it. The token is 32
 * random bytes the table keys its record by (nothing is derived from it, so
 * it cannot be forged or altered, only guessed: 2^256). A record holds the
 * issuer, the service, the service's incarnation, the receiver and an expiry.
 *
 * Incarnation: an endpoint names the service as it was registered when it
 * was minted, not one helper process. A crash and its relaunch, an idle exit
 * or a zero-downtime restart keep it alive (as they keep any connection
 * alive); `stop`, unregistering it (a reload that removes it or changes its
 * protocol) and its crash-loop breaker tripping kill it, and close every
 * connection opened from it.
 *
 * Pure bookkeeping with an injected clock; the broker owns one.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { isEndpoint, type Endpoint } from '../protocol/endpoint-keyword.js';

/** Who may open an endpoint: the embedding app, a helper service, or a daemon client identity (on a uid, when given). */
export type EndpointReceiver =
  | { kind: 'app' }
  | { kind: 'service'; name: string }
  | { kind: 'client'; name: string; uid?: number };

/** Who is opening an endpoint, as the broker or daemon verified it. */
export type EndpointOpener =
  | { kind: 'app' }
  | { kind: 'service'; name: string }
  | { kind: 'client'; name: string; uid: number };

/** Limits of an {@link EndpointTable}. */
export interface EndpointTableOptions {
  /** Clock in ms (Date.now). */
  now: () => number;
  /** Lifetime of an endpoint nobody has opened, in ms. @default 300000 */
  ttlMs?: number;
  /** Endpoints one issuer may hold unexpired at once. @default 1024 */
  maxPerIssuer?: number;
}

/** Default lifetime of an unopened endpoint, in ms (5 min). */
export const ENDPOINT_TTL_MS = 300_000;
/** Longest lifetime an issuer may ask for, in ms (1 h). */
export const ENDPOINT_MAX_TTL_MS = 3_600_000;
/** Default cap on live endpoints per issuing service. */
export const ENDPOINT_MAX_PER_ISSUER = 1024;

interface EndpointRecord {
  readonly issuer: string;
  readonly service: string;
  readonly incarnation: number;
  readonly receiver: EndpointReceiver;
  readonly expiresAt: number;
  /** Connections opened from it and still open: it does not expire while one is. */
  readonly open: Set<(error: BulkheadError) => void>;
}

/** Why a service's endpoints died, as `data.reason` of ERR_ENDPOINT_DEAD. */
export type EndpointDeath = 'stopped' | 'removed' | 'failed' | 'closed';

/** Mints, checks and kills endpoints. */
export class EndpointTable {
  private readonly records = new Map<string, EndpointRecord>();
  /** Incarnation per service name: bumped when its endpoints die (never reset, so a re-registered name gets a new one). */
  private readonly incarnations = new Map<string, number>();
  private readonly deaths = new Map<string, EndpointDeath>();
  private readonly ttlMs: number;
  private readonly maxPerIssuer: number;

  constructor(private readonly options: EndpointTableOptions) {
    this.ttlMs = options.ttlMs ?? ENDPOINT_TTL_MS;
    this.maxPerIssuer = options.maxPerIssuer ?? ENDPOINT_MAX_PER_ISSUER;
  }

  /** Endpoints in the table (unexpired or still open). */
  get size(): number {
    return this.records.size;
  }

  /**
   * Mints an endpoint for `service`. The caller has checked that `issuer` may
   * reach it (its `connects`).
   * @throws BulkheadError ERR_BACKPRESSURE when the issuer already holds {@link EndpointTableOptions.maxPerIssuer}, ERR_INVALID_OPTION for a bad ttlMs
   */
  mint(issuer: string, service: string, receiver: EndpointReceiver, ttlMs = this.ttlMs): Endpoint {
    if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > ENDPOINT_MAX_TTL_MS) {
      throw bulkheadError('ERR_INVALID_OPTION', `An endpoint's ttlMs must be an integer from 1 to ${ENDPOINT_MAX_TTL_MS} ms.`, { option: 'ttlMs' });
    }
    this.sweep();
    let held = 0;
    for (const record of this.records.values()) if (record.issuer === issuer) held++;
    if (held >= this.maxPerIssuer) {
      throw bulkheadError('ERR_BACKPRESSURE', `${issuer} already holds ${held} live endpoints (limit ${this.maxPerIssuer}); let some expire or be opened first.`, { limit: this.maxPerIssuer });
    }
    const token = randomBytes(32).toString('base64url');
    this.records.set(token, { issuer, service, incarnation: this.incarnation(service), receiver, expiresAt: this.options.now() + ttlMs, open: new Set() });
    return { service, token } as unknown as Endpoint;
  }

  /**
   * Checks that `opener` may open `value` now; returns its service and issuer.
   * The order of checks keeps a stranger from learning anything: shape and
   * token first, then the binding, then liveness.
   * @param granted - whether the issuer may still reach the service (its current `connects`)
   * @throws BulkheadError ERR_ENDPOINT_INVALID, ERR_ENDPOINT_NOT_YOURS or ERR_ENDPOINT_DEAD
   */
  check(value: unknown, opener: EndpointOpener, granted: (issuer: string, service: string) => boolean): { service: string; issuer: string; token: string } {
    if (!isEndpoint(value)) {
      throw bulkheadError('ERR_ENDPOINT_INVALID', 'Not an endpoint: expected { service, token } exactly as the issuing service passed it on (docs/wire.md, "Endpoints").', { reason: 'malformed' });
    }
    const record = this.records.get(value.token);
    if (record === undefined || record.service !== value.service) {
      throw bulkheadError('ERR_ENDPOINT_INVALID', `This broker issued no such endpoint for ${value.service} (forged, altered, or expired and forgotten); ask the issuing service for a new one.`, { reason: record === undefined ? 'unknown' : 'tampered', service: value.service });
    }
    if (record.open.size === 0 && this.options.now() > record.expiresAt) {
      this.records.delete(value.token);
      throw bulkheadError('ERR_ENDPOINT_INVALID', `The endpoint for ${record.service} expired before it was opened; ask ${record.issuer} for a new one.`, { reason: 'expired', service: record.service });
    }
    if (!receives(record.receiver, opener)) {
      throw bulkheadError('ERR_ENDPOINT_NOT_YOURS', `This endpoint for ${record.service} was given to ${describe(record.receiver)}, not to ${describe(opener)}; only its receiver may open it.`, { reason: 'not-the-receiver', service: record.service, opener: describe(opener) });
    }
    if (record.incarnation !== this.incarnation(record.service)) {
      const reason = this.deaths.get(record.service) ?? 'stopped';
      throw bulkheadError('ERR_ENDPOINT_DEAD', `${record.service} was ${reason} since this endpoint was minted; the endpoint died with it. Ask ${record.issuer} for a new one.`, { reason, service: record.service, issuer: record.issuer });
    }
    if (!granted(record.issuer, record.service)) {
      throw bulkheadError('ERR_ENDPOINT_DEAD', `${record.issuer}, which minted this endpoint, may no longer reach ${record.service} (its connects changed, or it was removed).`, { reason: 'not-in-connects', service: record.service, issuer: record.issuer });
    }
    return { service: record.service, issuer: record.issuer, token: value.token };
  }

  /**
   * Records a connection opened from endpoint `token`: `close` runs when its
   * service dies. Returns the function to call when the connection closes first.
   */
  track(token: string, close: (error: BulkheadError) => void): () => void {
    const record = this.records.get(token);
    if (record === undefined) {
      close(bulkheadError('ERR_ENDPOINT_DEAD', 'The endpoint died while its connection was being opened.', { reason: 'stopped' }));
      return () => undefined;
    }
    record.open.add(close);
    return () => {
      record.open.delete(close);
    };
  }

  /**
   * `service`'s current endpoints die: opening them fails with
   * ERR_ENDPOINT_DEAD (`data.reason` = `why`) and every connection opened
   * from them is closed with it.
   */
  died(service: string, why: EndpointDeath): void {
    this.incarnations.set(service, this.incarnation(service) + 1);
    this.deaths.set(service, why);
    for (const [token, record] of [...this.records]) {
      if (record.service !== service) continue;
      const error = bulkheadError('ERR_ENDPOINT_DEAD', `${service} was ${why}; connections opened from an endpoint for it are closed. Ask ${record.issuer} for a new endpoint.`, { reason: why, service, issuer: record.issuer });
      const closers = [...record.open];
      record.open.clear();
      for (const close of closers) close(error);
      // Kept until it expires, so opening it says "dead" rather than "unknown".
      if (this.options.now() > record.expiresAt) this.records.delete(token);
    }
  }

  private incarnation(service: string): number {
    return this.incarnations.get(service) ?? 0;
  }

  /** Forgets expired endpoints nobody holds open. */
  private sweep(): void {
    const now = this.options.now();
    for (const [token, record] of this.records) if (record.open.size === 0 && now > record.expiresAt) this.records.delete(token);
  }
}

/** True when `opener` is the receiver an endpoint was bound to. */
function receives(receiver: EndpointReceiver, opener: EndpointOpener): boolean {
  if (receiver.kind === 'app') return opener.kind === 'app';
  if (receiver.kind === 'service') return opener.kind === 'service' && opener.name === receiver.name;
  return opener.kind === 'client' && opener.name === receiver.name && (receiver.uid === undefined || receiver.uid === opener.uid);
}

function describe(who: EndpointReceiver | EndpointOpener): string {
  if (who.kind === 'app') return 'the embedding app';
  if (who.kind === 'service') return `service ${who.name}`;
  return `client ${who.name}${who.uid === undefined ? '' : ` (uid ${who.uid})`}`;
}

/**
 * The receiver a mint request names (its wire form, docs/wire.md), checked.
 * @throws BulkheadError ERR_INVALID_PARAMS for anything else
 */
export function parseReceiver(value: unknown): EndpointReceiver {
  const r = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as Record<string, unknown>;
  const name = r['name'];
  const nameOk = typeof name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name);
  if (r['kind'] === 'app') return { kind: 'app' };
  if (r['kind'] === 'service' && nameOk) return { kind: 'service', name };
  if (r['kind'] === 'client' && nameOk) {
    const uid = r['uid'];
    if (uid === undefined || uid === null) return { kind: 'client', name };
    if (typeof uid === 'number' && Number.isInteger(uid) && uid >= 0 && uid <= 0xffffffff) return { kind: 'client', name, uid };
  }
  throw bulkheadError('ERR_INVALID_PARAMS', 'An endpoint\'s receiver must be { kind: "app" }, { kind: "service", name } or { kind: "client", name, uid? } (docs/wire.md, "Endpoints").', { part: 'params' });
}
