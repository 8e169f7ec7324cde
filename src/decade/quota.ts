/**
 * Storage quotas per account (spec/decade.md §5): a PUT is refused before
 * any octet is stored when the account's stored objects, plus the PUTs under
 * way (which reserve their size until they are recorded or dropped), plus
 * the new object would exceed its quota.
 *
 * @module
 */
import { DecadeError } from './errors.js';
import type { DecadeStore } from './store.js';

/** The quotas of a server's accounts and the octets reserved by PUTs under way. */
export class Quotas {
  private readonly reservedOf = new Map<string, number>();
  /** Octets of reservations released so far, per account (monotonic; see {@link reserve}). */
  private readonly releasedOf = new Map<string, number>();

  /** `quotas`: octets per account, null for unlimited. */
  constructor(private readonly quotas: ReadonlyMap<string, number | null>, private readonly store: DecadeStore, private readonly now: () => number) {}

  /** The account's quota (null: unlimited). */
  quota(account: string): number | null {
    return this.quotas.get(account) ?? null;
  }

  /** Octets the account's PUTs under way have reserved. */
  reserved(account: string): number {
    return this.reservedOf.get(account) ?? 0;
  }

  private add(account: string, d: number): void {
    const n = this.reserved(account) + d;
    if (n <= 0) this.reservedOf.delete(account);
    else this.reservedOf.set(account, n);
  }

  /**
   * Refuse (QUOTA_EXCEEDED) a new object of `size` octets that the account's
   * quota cannot hold — unless the account holds it already; else reserve
   * the octets until the returned release is called (idempotent). The store
   * answers asynchronously: reservations released while it was asked (their
   * objects may or may not be in its answer) are counted as still held, so
   * two PUTs never both fit where only one does.
   */
  async reserve(account: string, hex: string, size: number): Promise<() => void> {
    const quota = this.quota(account);
    if (quota !== null) {
      const before = this.releasedOf.get(account) ?? 0;
      const now = this.now();
      const [held, used] = await Promise.all([this.store.get(account, hex, now), this.store.usage(account, now)]);
      const since = (this.releasedOf.get(account) ?? 0) - before;
      const reserved = this.reserved(account);
      if (held === undefined && used + since + reserved + size > quota) {
        throw new DecadeError('QUOTA_EXCEEDED', `storing ${size} octets would exceed the account's quota (${Math.max(0, quota - used - since - reserved)} octets available)`);
      }
    }
    this.add(account, size);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.add(account, -size);
      this.releasedOf.set(account, (this.releasedOf.get(account) ?? 0) + size);
    };
  }
}
