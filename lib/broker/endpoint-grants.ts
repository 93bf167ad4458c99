/**
 * What one helper may call beyond its manifest's `connects`: the services of
 * the endpoints it opened (docs/wire.md 11.3). A grant lasts until the helper
 * exits or the service's endpoints die; then calls to the service fail with
 * the death's ERR_ENDPOINT_DEAD (not ERR_NOT_PERMITTED), and the calls in
 * flight on it are failed by the router.
 * @module
 */
import type { BulkheadError } from '../errors.js';

/** One helper's endpoint grants (its outbound router owns them). */
export class EndpointGrants {
  /** Service → how to stop tracking each endpoint opened for it. */
  private readonly live = new Map<string, Array<() => void>>();
  /** Service → why its grants died (until a new one is opened). */
  private readonly dead = new Map<string, BulkheadError>();

  /** @param revoked - the service's last grant died with `error`: fail what is in flight to it */
  constructor(private readonly revoked: (service: string, error: BulkheadError) => void) {}

  /**
   * Grants `service`; `track` registers the closer with the endpoint table and
   * returns the function that unregisters it.
   */
  add(service: string, track: (close: (error: BulkheadError) => void) => () => void): void {
    this.dead.delete(service);
    let untracks = this.live.get(service);
    if (untracks === undefined) this.live.set(service, (untracks = []));
    untracks.push(track((error) => this.died(service, error)));
  }

  /** True while an endpoint opened for `service` lives. */
  allows(service: string): boolean {
    return this.live.has(service);
  }

  /** Why calls to `service` fail, when its grant died. */
  refusal(service: string): BulkheadError | undefined {
    return this.dead.get(service);
  }

  /** The helper is gone: the endpoint table forgets its grants. */
  close(): void {
    for (const untracks of this.live.values()) for (const untrack of untracks) untrack();
    this.live.clear();
  }

  private died(service: string, error: BulkheadError): void {
    const untracks = this.live.get(service);
    if (untracks === undefined) return;
    this.live.delete(service);
    for (const untrack of untracks) untrack();
    this.dead.set(service, error);
    this.revoked(service, error);
  }
}
