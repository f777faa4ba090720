/**
 * The HPACK indexing tables (RFC 7541 §2.3): the static table of Appendix A and the
 * dynamic table, a FIFO bounded by a size in octets (§4.1) with eviction (§4.4).
 */

/** A header field as HPACK sees it: name and value as latin1 strings, one char per octet. */
export interface HeaderField {
  name: string;
  value: string;
  /**
   * Send as a literal never indexed (RFC 7541 §6.2.3): intermediaries must keep it literal
   * too, so it cannot be guessed by compression side channels (§7.1.3). The decoder sets
   * it for fields that arrived that way.
   */
  sensitive?: boolean;
}

// RFC 7541 Appendix A.
// biome-ignore format: a table
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''],
  ['content-length', ''], ['content-location', ''], ['content-range', ''], ['content-type', ''],
  ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''],
  ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** Static entries are indices 1..61; the dynamic table starts at 62 (RFC 7541 §2.3.3). */
export const STATIC_TABLE_LENGTH = STATIC_TABLE.length;

/** For the encoder: name → lowest static index with that name, and name+value → index. */
export const STATIC_NAME_INDEX = new Map<string, number>();
export const STATIC_FIELD_INDEX = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
  let byValue = STATIC_FIELD_INDEX.get(name);
  if (byValue === undefined) STATIC_FIELD_INDEX.set(name, (byValue = new Map()));
  if (!byValue.has(value)) byValue.set(value, i + 1);
});

/** RFC 7541 §4.1: an entry's size is its name and value lengths in octets plus 32. */
export const ENTRY_OVERHEAD = 32;
export function entrySize(name: string, value: string): number {
  return name.length + value.length + ENTRY_OVERHEAD;
}

/**
 * The dynamic table (RFC 7541 §2.3.2): newest entry at the lowest index. Entries live in a
 * ring buffer; each has an absolute insertion number so that the encoder's lookup maps can
 * tell whether an entry they remember is still present.
 */
export class DynamicTable {
  private names: string[] = [];
  private values: string[] = [];
  private head = 0; // slot of the oldest entry
  /** Entries present. */
  length = 0;
  /** Sum of entry sizes in octets (RFC 7541 §4.1). */
  size = 0;
  /** Total entries ever inserted; the newest has insertion number inserted - 1. */
  inserted = 0;
  /** Entries evicted (their insertion numbers are 0 .. evicted-1). */
  evicted = 0;

  constructor(
    /** RFC 7541 §4.2: the current maximum size, changed by dynamic table size updates. */
    public maxSize: number,
    /** Called with each entry's insertion number as it is evicted. */
    private readonly onEvict?: (name: string, value: string, insertion: number) => void,
  ) {}

  /** Entry at 0-based position `i` from the newest; undefined beyond the table. */
  get(i: number): readonly [string, string] | undefined {
    if (!(i >= 0 && i < this.length)) return undefined;
    const cap = this.names.length;
    const slot = (this.head + this.length - 1 - i) % cap;
    return [this.names[slot] as string, this.values[slot] as string];
  }

  /** Position from the newest of insertion number `ins`, or -1 if evicted. */
  positionOf(ins: number): number {
    if (ins < this.evicted || ins >= this.inserted) return -1;
    return this.inserted - 1 - ins;
  }

  /**
   * RFC 7541 §4.4: evict until the new entry fits; an entry larger than the maximum empties
   * the table and is not added (that is not an error).
   */
  add(name: string, value: string): void {
    const size = entrySize(name, value);
    while (this.length > 0 && this.size + size > this.maxSize) this.evictOldest();
    if (size > this.maxSize) {
      this.inserted++;
      this.evicted = this.inserted;
      return;
    }
    if (this.length === this.names.length) this.grow();
    const slot = (this.head + this.length) % this.names.length;
    this.names[slot] = name;
    this.values[slot] = value;
    this.length++;
    this.size += size;
    this.inserted++;
  }

  /** RFC 7541 §4.3: a smaller maximum evicts from the end until the table fits. */
  setMaxSize(max: number): void {
    this.maxSize = max;
    while (this.length > 0 && this.size > max) this.evictOldest();
  }

  private evictOldest(): void {
    const name = this.names[this.head] as string;
    const value = this.values[this.head] as string;
    this.size -= entrySize(name, value);
    this.names[this.head] = '';
    this.values[this.head] = '';
    this.head = (this.head + 1) % this.names.length;
    this.length--;
    this.onEvict?.(name, value, this.evicted);
    this.evicted++;
  }

  private grow(): void {
    const cap = Math.max(16, this.names.length * 2);
    const names = new Array<string>(cap);
    const values = new Array<string>(cap);
    for (let i = 0; i < this.length; i++) {
      const slot = (this.head + i) % (this.names.length || 1);
      names[i] = this.names[slot] as string;
      values[i] = this.values[slot] as string;
    }
    this.names = names;
    this.values = values;
    this.head = 0;
  }

  /** Entries newest first, for tests and traces. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.length; i++) out.push(this.get(i) as [string, string]);
    return out;
  }
}
