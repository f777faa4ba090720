/**
 * Path MTU memory (RFC 1191 §6.3 for IPv4, RFC 8201 §5.2-5.3 for IPv6): what a
 * Packet Too Big / Fragmentation Needed message taught about a destination, believed until
 * it expires and the link MTU is tried again. Time comes in as `now`; nothing is armed:
 * an entry past its expiry is simply not believed (and deleted) the next time it is read.
 */

/** Entries kept at most: they are only hints (RFC 8201 §5.3), so a flood cannot grow them. */
export const MAX_PMTU_ENTRIES = 4096;

/** RFC 791 §3.2 / RFC 8200 §5: no path is believed below the minimum MTU of its version. */
export const MIN_MTU_V4 = 68;
export const MIN_MTU_V6 = 1280;

interface PmtuEntry {
  mtu: number;
  expires: number;
}

export class PathMtuCache {
  private readonly entries = new Map<string, PmtuEntry>();

  /** How long a lowered estimate is believed: RFC 1191 §6.3 and RFC 8201 §5.3 say 10 min. */
  constructor(readonly expiryMs: number = 600_000) {}

  get size(): number {
    return this.entries.size;
  }

  /** The learned MTU toward dst, if one is believed at `now` (an expired one is forgotten). */
  get(dst: string, now: number): number | undefined {
    const e = this.entries.get(dst);
    if (e === undefined) return undefined;
    if (e.expires <= now) {
      this.entries.delete(dst);
      return undefined;
    }
    return e.mtu;
  }

  /** A link's MTU toward dst, lowered by what is believed for dst at `now` (RFC 1191 §6.3, RFC 8201 §5). */
  mtuVia(linkMtu: number, dst: string, now: number): number {
    const learned = this.get(dst, now);
    return learned !== undefined && learned < linkMtu ? learned : linkMtu;
  }

  /** When the entry for dst stops being believed, if there is one. */
  expiresAt(dst: string): number | undefined {
    return this.entries.get(dst)?.expires;
  }

  /**
   * RFC 1191 §6.1 / RFC 8201 §4: set dst's estimate to `mtu` (the caller has checked that
   * it lowers the current one), believed until now + expiryMs.
   */
  lower(dst: string, mtu: number, now: number): void {
    if (this.entries.size >= MAX_PMTU_ENTRIES && !this.entries.has(dst)) this.prune(now);
    this.entries.set(dst, { mtu, expires: now + this.expiryMs });
  }

  private prune(now: number): void {
    for (const [k, v] of this.entries) if (v.expires <= now) this.entries.delete(k);
    // Still full: forget the oldest (Map iterates in insertion order).
    while (this.entries.size >= MAX_PMTU_ENTRIES) {
      const first = this.entries.keys().next();
      if (first.done) break;
      this.entries.delete(first.value);
    }
  }
}
