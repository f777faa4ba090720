import type { Counters } from '@stepwire/wire';
import { IPV4_MIN_HEADER, type Ipv4Packet, ipv4OptionCopied, ipv4OptionsLength } from './ipv4.ts';
import {
  extensionHeadersLength,
  IPV6_HEADER_LENGTH,
  type Ipv6ExtensionHeader,
  type Ipv6Packet,
  protocolOfExtension,
  writeIpv6ExtensionHeaders,
} from './ipv6.ts';

/**
 * Fragmentation (RFC 791 §2.3 and §3.2; RFC 8200 §4.5) and reassembly.
 *
 * The splitters return packet values whose payloads are views into the original payload;
 * the caller encodes each one.
 */

/**
 * Fragment Offset counts 8-octet units (RFC 791 §3.1; RFC 8200 §4.5), so every fragment
 * but the last carries a multiple of 8 bytes.
 */
const FRAGMENT_UNIT = 8;
/** The IPv6 Fragment header is 8 bytes: Next Header, Reserved, Offset+M, Identification (RFC 8200 §4.5). */
const IPV6_FRAGMENT_HEADER_LENGTH = 8;

/** The largest multiple of FRAGMENT_UNIT that fits in `room` bytes. */
const wholeUnits = (room: number): number => Math.floor(room / FRAGMENT_UNIT) * FRAGMENT_UNIT;

/**
 * Split an IPv4 datagram so that every piece fits in `mtu` (RFC 791 §3.2, "An Example
 * Fragmentation Procedure"). Options whose copied flag is set go into every fragment,
 * the others only into the first. A datagram that is already a fragment is split again:
 * offsets add up and the last piece keeps the original MF.
 */
export function fragmentIpv4(p: Ipv4Packet, mtu: number): Ipv4Packet[] {
  const firstHeader = IPV4_MIN_HEADER + (p.options.length ? ipv4OptionsLength(p.options) : 0);
  if (firstHeader + p.payload.length <= mtu) return [p];
  if (p.dontFragment) throw new RangeError('fragmentIpv4: DF is set');
  const laterOptions = p.options.filter((o) => ipv4OptionCopied(o.type));
  const laterHeader = IPV4_MIN_HEADER + (laterOptions.length ? ipv4OptionsLength(laterOptions) : 0);
  const out: Ipv4Packet[] = [];
  const base = p.fragmentOffset * FRAGMENT_UNIT;
  let pos = 0;
  while (pos < p.payload.length) {
    const first = out.length === 0;
    const hl = first ? firstHeader : laterHeader;
    const room = wholeUnits(mtu - hl);
    if (room < FRAGMENT_UNIT)
      throw new RangeError(`fragmentIpv4: MTU ${mtu} leaves no room after a ${hl}-byte header`);
    const take = Math.min(room, p.payload.length - pos);
    const last = pos + take >= p.payload.length;
    out.push({
      ...p,
      options: first ? p.options : laterOptions,
      moreFragments: last ? p.moreFragments : true,
      fragmentOffset: (base + pos) / FRAGMENT_UNIT,
      payload: p.payload.subarray(pos, pos + take),
    });
    pos += take;
  }
  return out;
}

/**
 * Source fragmentation for IPv6 (RFC 8200 §4.5). The Per-Fragment headers are the IPv6
 * header and the extension headers up to and including the last Routing header (or a
 * leading Hop-by-Hop header); the rest of the chain and the payload form the Fragmentable
 * Part, cut into 8-octet multiples, each behind a Fragment header with one Identification.
 * A packet that fits is returned unchanged, without a Fragment header.
 */
export function fragmentIpv6(p: Ipv6Packet, mtu: number, identification: number): Ipv6Packet[] {
  const extLen = extensionHeadersLength(p.extensionHeaders);
  if (IPV6_HEADER_LENGTH + extLen + p.payload.length <= mtu) return [p];
  if (p.extensionHeaders.some((h) => h.kind === 'fragment')) {
    throw new RangeError('fragmentIpv6: the packet already has a Fragment header');
  }
  let split = 0;
  if (p.extensionHeaders[0]?.kind === 'hop-by-hop') split = 1;
  for (let i = 0; i < p.extensionHeaders.length; i++) {
    if (p.extensionHeaders[i]!.kind === 'routing') split = i + 1;
  }
  const perFragment = p.extensionHeaders.slice(0, split);
  const fragmentableHeaders = p.extensionHeaders.slice(split);
  const fhLen = extensionHeadersLength(fragmentableHeaders);
  const fragmentable = new Uint8Array(fhLen + p.payload.length);
  writeIpv6ExtensionHeaders(fragmentableHeaders, p.nextHeader, fragmentable, 0);
  fragmentable.set(p.payload, fhLen);
  const firstNext = fragmentableHeaders.length ? protocolOfExtension(fragmentableHeaders[0]!) : p.nextHeader;
  const perLen = IPV6_HEADER_LENGTH + extensionHeadersLength(perFragment) + IPV6_FRAGMENT_HEADER_LENGTH;
  const room = wholeUnits(mtu - perLen);
  if (room < FRAGMENT_UNIT)
    throw new RangeError(`fragmentIpv6: MTU ${mtu} leaves no room after ${perLen} header bytes`);
  const out: Ipv6Packet[] = [];
  for (let pos = 0; pos < fragmentable.length; pos += room) {
    const take = Math.min(room, fragmentable.length - pos);
    const frag: Ipv6ExtensionHeader = {
      kind: 'fragment',
      fragmentOffset: pos / FRAGMENT_UNIT,
      moreFragments: pos + take < fragmentable.length,
      identification: identification >>> 0,
    };
    out.push({
      ...p,
      extensionHeaders: [...perFragment, frag],
      nextHeader: firstNext,
      payload: fragmentable.subarray(pos, pos + take),
    });
  }
  return out;
}

export interface ReassemblyLimits {
  /** How long a partial datagram waits for its missing pieces (RFC 791: 15 s lower bound; RFC 8200: 60 s). */
  timeoutMs: number;
  /** Fragments buffered from one source address, all its datagrams together. */
  maxFragmentsPerSource: number;
  /** Bytes buffered from one source address. */
  maxBytesPerSource: number;
  /** Partial datagrams (and discarded ones remembered until their timeout) per source. */
  maxDatagramsPerSource: number;
  /** Bytes buffered from everyone. */
  maxBytesTotal: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Omit<ReassemblyLimits, 'timeoutMs'> = {
  maxFragmentsPerSource: 2048,
  maxBytesPerSource: 1 << 20,
  maxDatagramsPerSource: 64,
  maxBytesTotal: 8 << 20,
};

/** One fragment as the reassembler sees it; the caller has parsed the header. */
export interface FragmentIn<H> {
  /** Reassembly key: RFC 791 (src, dst, protocol, id); RFC 8200 §4.5 (src, dst, id). */
  key: string;
  /** Source address, for the per-host limits. */
  source: string;
  /** Fragment offset in bytes. */
  offset: number;
  more: boolean;
  /** The fragment's data; copied, so the caller may reuse its buffer. */
  data: Uint8Array;
  /** Header facts kept from the fragment at offset 0 (the reassembled datagram's header). */
  header: H;
  /** For the offset-0 fragment: its leading bytes, to quote in a time-exceeded message. */
  quote?: Uint8Array;
}

export interface Reassembled<H> {
  header: H;
  payload: Uint8Array;
  /** Leading bytes of the first fragment as received. */
  quote?: Uint8Array;
}

export interface ReassemblyExpired<H> {
  key: string;
  source: string;
  /** Present when the first fragment had arrived: then RFC 792 / RFC 8200 §4.5 call for a Time Exceeded code 1. */
  header?: H;
  quote?: Uint8Array;
}

interface Piece {
  start: number;
  end: number;
  data: Uint8Array;
}

interface PartialDatagram<H> {
  key: string;
  source: string;
  deadline: number;
  pieces: Piece[];
  bytes: number;
  /** Known once the fragment with MF clear arrives. */
  total: number;
  header?: H;
  quote?: Uint8Array;
  /** Abandoned (overlap, inconsistency, limits): later fragments are dropped until the deadline (RFC 5722). */
  discarded: boolean;
}

interface SourceUsage {
  fragments: number;
  bytes: number;
  datagrams: number;
}

/**
 * Reassembly in the spirit of RFC 815: the received pieces of each datagram are kept
 * sorted by offset, so the holes are the gaps between them and the datagram is complete
 * when the last fragment has fixed its length and the pieces add up to it.
 *
 * Overlaps: RFC 5722 (and RFC 8200 §4.5) make any overlap discard the whole datagram,
 * including fragments not yet received; exact duplicates (same offset and length) are
 * dropped alone, as RFC 8200 §4.5 allows. The same rule is applied to IPv4, where
 * overlapping fragments have been a way to slip data past filters (RFC 1858, RFC 3128).
 *
 * Sans-I/O: the caller passes `now`, asks nextTimeout() and calls expire(now).
 * Counters: 'reasm.drop.<reason>' for every fragment or datagram dropped.
 */
export class Reassembler<H> {
  private readonly partials = new Map<string, PartialDatagram<H>>();
  private readonly usage = new Map<string, SourceUsage>();
  private totalBytes = 0;

  constructor(
    readonly limits: ReassemblyLimits,
    private readonly counters: Counters,
  ) {}

  /** Datagrams being reassembled (or remembered as discarded). */
  get size(): number {
    return this.partials.size;
  }
  get bufferedBytes(): number {
    return this.totalBytes;
  }

  add(f: FragmentIn<H>, now: number): Reassembled<H> | undefined {
    const len = f.data.length;
    const end = f.offset + len;
    if (f.more && (len === 0 || (len & 7) !== 0)) return this.dropFragment('bad-length');
    if (end > 0xffff) return this.dropFragment('too-long');
    let p = this.partials.get(f.key);
    if (p === undefined) {
      const u = this.usageOf(f.source);
      if (u.datagrams >= this.limits.maxDatagramsPerSource) return this.dropFragment('limit');
      p = {
        key: f.key,
        source: f.source,
        deadline: now + this.limits.timeoutMs,
        pieces: [],
        bytes: 0,
        total: -1,
        discarded: false,
      };
      u.datagrams++;
      this.partials.set(f.key, p);
    }
    if (p.discarded) return this.dropFragment('discarded');
    if (!f.more) {
      if (p.total !== -1 && p.total !== end) return this.discard(p, 'inconsistent');
      const last = p.pieces[p.pieces.length - 1];
      if (last !== undefined && last.end > end) return this.discard(p, 'inconsistent');
      p.total = end;
    } else if (p.total !== -1 && end >= p.total) {
      return this.discard(p, 'inconsistent');
    }
    if (len > 0) {
      // Find the insertion point: the first piece starting at or after this one.
      const ps = p.pieces;
      let i = ps.length;
      while (i > 0 && ps[i - 1]!.start >= f.offset) i--;
      const next = ps[i];
      if (next !== undefined && next.start === f.offset && next.end === end)
        return this.dropFragment('duplicate');
      const prev = ps[i - 1];
      if ((prev !== undefined && prev.end > f.offset) || (next !== undefined && next.start < end)) {
        return this.discard(p, 'overlap');
      }
      const u = this.usageOf(p.source);
      if (
        u.fragments + 1 > this.limits.maxFragmentsPerSource ||
        u.bytes + len > this.limits.maxBytesPerSource ||
        this.totalBytes + len > this.limits.maxBytesTotal
      ) {
        return this.discard(p, 'limit');
      }
      ps.splice(i, 0, { start: f.offset, end, data: f.data.slice() });
      p.bytes += len;
      u.fragments++;
      u.bytes += len;
      this.totalBytes += len;
    }
    if (f.offset === 0 && p.header === undefined) {
      p.header = f.header;
      p.quote = f.quote?.slice();
    }
    if (p.total === -1 || p.bytes !== p.total || p.header === undefined) return undefined;
    const payload = new Uint8Array(p.total);
    for (const piece of p.pieces) payload.set(piece.data, piece.start);
    this.remove(p);
    this.counters.inc('reasm.ok');
    return { header: p.header, payload, quote: p.quote };
  }

  /** Earliest deadline of a partial datagram, or undefined when nothing waits. */
  nextTimeout(): number | undefined {
    // Deadlines grow with insertion order (one timeout per reassembler), so the first is earliest.
    for (const p of this.partials.values()) return p.deadline;
    return undefined;
  }

  /** Drop every datagram whose deadline has passed; report those that should get a Time Exceeded. */
  expire(now: number): ReassemblyExpired<H>[] {
    const out: ReassemblyExpired<H>[] = [];
    for (const p of this.partials.values()) {
      if (p.deadline > now) break;
      this.remove(p);
      if (p.discarded) continue;
      this.counters.inc('reasm.drop.timeout');
      out.push({ key: p.key, source: p.source, header: p.header, quote: p.quote });
    }
    return out;
  }

  private usageOf(source: string): SourceUsage {
    let u = this.usage.get(source);
    if (u === undefined) {
      u = { fragments: 0, bytes: 0, datagrams: 0 };
      this.usage.set(source, u);
    }
    return u;
  }

  private release(p: PartialDatagram<H>): void {
    const u = this.usageOf(p.source);
    u.fragments -= p.pieces.length;
    u.bytes -= p.bytes;
    this.totalBytes -= p.bytes;
    p.pieces = [];
    p.bytes = 0;
  }

  private remove(p: PartialDatagram<H>): void {
    this.release(p);
    this.partials.delete(p.key);
    const u = this.usageOf(p.source);
    u.datagrams--;
    if (u.datagrams === 0) this.usage.delete(p.source);
  }

  private dropFragment(reason: string): undefined {
    this.counters.inc(`reasm.drop.${reason}`);
    return undefined;
  }

  /** Abandon the datagram but remember its key until the deadline (RFC 5722 §4). */
  private discard(p: PartialDatagram<H>, reason: string): undefined {
    this.counters.inc(`reasm.drop.${reason}`);
    this.release(p);
    p.header = undefined;
    p.quote = undefined;
    p.discarded = true;
    return undefined;
  }
}
