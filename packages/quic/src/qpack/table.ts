/**
 * The QPACK dynamic table (RFC 9204 §3.2): a FIFO of (name, value) entries, addressed by
 * absolute index (0 for the first entry ever inserted, §3.2.4), bounded by a capacity in
 * bytes where each entry costs name + value + 32 (§3.2.1).
 */

export interface TableEntry {
  readonly name: string;
  readonly value: string;
}

/** §3.2.1: "The size of an entry is the sum of its name's length in bytes, its value's length in bytes, and 32 additional bytes." */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/** §3.2.2 / §4.5.1.1: MaxEntries = floor(MaxTableCapacity / 32). */
export function maxEntries(maxTableCapacity: number): number {
  return Math.floor(maxTableCapacity / 32);
}

export class DynamicTable {
  capacity = 0;
  size = 0;
  /** The number of insertions so far: the absolute index the next entry will get. */
  insertCount = 0;
  /** Oldest first; entries[0] has absolute index insertCount - entries.length. */
  private entries: TableEntry[] = [];

  get length(): number {
    return this.entries.length;
  }
  /** Absolute index of the oldest entry still in the table. */
  get firstIndex(): number {
    return this.insertCount - this.entries.length;
  }

  get(absolute: number): TableEntry | undefined {
    if (absolute < this.firstIndex || absolute >= this.insertCount) return undefined;
    return this.entries[absolute - this.firstIndex];
  }

  /** Latest absolute index of an exact (name, value) match, or of a name match. */
  find(name: string, value: string): { exact?: number; name?: number } {
    const out: { exact?: number; name?: number } = {};
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (e.name !== name) continue;
      out.name ??= this.firstIndex + i;
      if (e.value === value) {
        out.exact = this.firstIndex + i;
        break;
      }
    }
    return out;
  }

  /**
   * Evicts oldest entries until `needed` more bytes fit under the capacity. `evictable`
   * says whether an absolute index may go (the encoder's rule, §2.1.1); returns false,
   * evicting nothing, when that is impossible.
   */
  makeRoom(needed: number, evictable: (absolute: number) => boolean = () => true): boolean {
    let free = this.capacity - this.size;
    let n = 0;
    while (free < needed) {
      const e = this.entries[n];
      if (!e || !evictable(this.firstIndex + n)) return false;
      free += entrySize(e.name, e.value);
      n++;
    }
    for (let i = 0; i < n; i++) {
      const e = this.entries.shift()!;
      this.size -= entrySize(e.name, e.value);
    }
    return true;
  }

  /** §3.2.2: inserting an entry larger than the capacity is an error; returns false then, or when eviction is refused. */
  insert(name: string, value: string, evictable?: (absolute: number) => boolean): boolean {
    const size = entrySize(name, value);
    if (size > this.capacity) return false;
    if (!this.makeRoom(size, evictable)) return false;
    this.entries.push({ name, value });
    this.size += size;
    this.insertCount++;
    return true;
  }

  /** §3.2.3: a capacity reduction evicts entries that no longer fit. */
  setCapacity(capacity: number, evictable?: (absolute: number) => boolean): boolean {
    const old = this.capacity;
    this.capacity = capacity;
    if (this.makeRoom(0, evictable)) return true;
    this.capacity = old;
    return false;
  }
}
