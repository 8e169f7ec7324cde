/**
 * The scheduler's ready sets: first-in first-out sets of channels in a
 * growable circular array, with membership kept as a bit on the channel. Adding
 * a member and taking the front are O(1) and allocate nothing once the array
 * has grown to the session's working set (a `Set` reallocates its table as it
 * fills and empties: once per message when one channel goes in and out of it
 * for every message). Removing a member from the middle is O(members).
 *
 * @module
 */

/** What a ring needs of its members: a bit mask the rings of one core share. */
export interface RingMember {
  /** @internal Bits of the rings the member is in. */
  ringBits: number;
}

/** @internal A FIFO set of members; each ring of a core has its own bit. */
export class ReadyRing<T extends RingMember> {
  private slots: (T | undefined)[] = new Array(8);
  private head = 0;
  /** Slots in use, stale ones (members removed since) included. */
  private used = 0;
  private readonly bit: number;

  /** `bit`: this ring's bit in {@link RingMember.ringBits} (one per ring of a core). */
  constructor(bit: number) {
    this.bit = bit;
  }

  /** Whether `m` is a member. */
  has(m: T): boolean {
    return (m.ringBits & this.bit) !== 0;
  }

  /** Add `m` at the back, unless it is a member already. */
  add(m: T): void {
    if ((m.ringBits & this.bit) !== 0) return;
    m.ringBits |= this.bit;
    if (this.used === this.slots.length) this.grow();
    this.slots[(this.head + this.used) & (this.slots.length - 1)] = m;
    this.used++;
  }

  /** Remove `m`, keeping the others' order: O(members), for the rare case (a channel closing). */
  delete(m: T): void {
    if ((m.ringBits & this.bit) === 0) return;
    m.ringBits &= ~this.bit;
    const mask = this.slots.length - 1;
    let i = 0;
    while (this.slots[(this.head + i) & mask] !== m) i++;
    for (; i < this.used - 1; i++) this.slots[(this.head + i) & mask] = this.slots[(this.head + i + 1) & mask];
    this.slots[(this.head + this.used - 1) & mask] = undefined;
    this.used--;
  }

  /** Members. */
  get size(): number {
    return this.used;
  }

  /** Take the front member out, or `undefined` when there is none. */
  shift(): T | undefined {
    if (this.used === 0) return undefined;
    const m = this.slots[this.head] as T;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & (this.slots.length - 1);
    this.used--;
    m.ringBits &= ~this.bit;
    return m;
  }

  /** The `i`-th member from the front (`0 <= i < size`): iterate by index, adding as you go if need be. */
  at(i: number): T {
    return this.slots[(this.head + i) & (this.slots.length - 1)] as T;
  }

  /** Remove every member. */
  clear(): void {
    while (this.used > 0) this.shift();
    this.head = 0;
  }

  private grow(): void {
    const old = this.slots;
    const next: (T | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.used; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.slots = next;
    this.head = 0;
  }
}
