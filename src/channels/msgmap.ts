/**
 * @internal
 * A map from message numbers to what a channel keeps per message (our MSGs
 * awaiting replies, the peer's MSGs awaiting ours). A channel almost always
 * has one or two; a `Map` that sees a new key per message rebuilds its table
 * every few messages, so up to {@link SMALL} entries live in two arrays
 * (searched in order), and only a channel that has more switches to a `Map`.
 * Iteration is in insertion order either way.
 *
 * @module
 */

/** Entries kept in arrays before switching to a Map. */
const SMALL = 8;

export class MsgnoMap<V> {
  private readonly keys: number[] = [];
  private readonly vals: (V | undefined)[] = [];
  private n = 0;
  private map: Map<number, V> | null = null;

  get size(): number {
    return this.map !== null ? this.map.size : this.n;
  }

  private indexOf(k: number): number {
    const keys = this.keys;
    for (let i = 0; i < this.n; i++) if (keys[i] === k) return i;
    return -1;
  }

  get(k: number): V | undefined {
    if (this.map !== null) return this.map.get(k);
    const i = this.indexOf(k);
    return i < 0 ? undefined : this.vals[i];
  }

  has(k: number): boolean {
    return this.map !== null ? this.map.has(k) : this.indexOf(k) >= 0;
  }

  set(k: number, v: V): this {
    if (this.map !== null) {
      this.map.set(k, v);
      return this;
    }
    const i = this.indexOf(k);
    if (i >= 0) {
      this.vals[i] = v;
    } else if (this.n < SMALL) {
      this.keys[this.n] = k;
      this.vals[this.n] = v;
      this.n++;
    } else {
      const m = new Map<number, V>();
      for (let j = 0; j < this.n; j++) m.set(this.keys[j] as number, this.vals[j] as V);
      m.set(k, v);
      this.map = m;
      this.clearArrays();
    }
    return this;
  }

  delete(k: number): boolean {
    if (this.map !== null) return this.map.delete(k);
    const i = this.indexOf(k);
    if (i < 0) return false;
    // Shift, keeping insertion order.
    for (let j = i + 1; j < this.n; j++) {
      this.keys[j - 1] = this.keys[j] as number;
      this.vals[j - 1] = this.vals[j];
    }
    this.n--;
    this.vals[this.n] = undefined;
    return true;
  }

  /** The values, in insertion order (a snapshot while in arrays: safe to change the map meanwhile). */
  values(): IterableIterator<V> {
    if (this.map !== null) return this.map.values();
    return (this.vals.slice(0, this.n) as V[]).values();
  }

  clear(): void {
    this.map = null;
    this.clearArrays();
  }

  private clearArrays(): void {
    for (let j = 0; j < this.n; j++) this.vals[j] = undefined;
    this.n = 0;
  }
}
