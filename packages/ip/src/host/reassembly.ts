/**
 * The host's two reassembly queues (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6) and
 * their one deadline: which fragments belong together, what is kept of the first fragment
 * to quote in a Time Exceeded message, and which datagrams ran out of time at `now`.
 */
import type { Counters } from '@stepwire/wire';
import {
  DEFAULT_REASSEMBLY_LIMITS,
  type Reassembled,
  Reassembler,
  type ReassemblyExpired,
  type ReassemblyLimits,
} from '../fragment.ts';
import type { Ipv4Packet } from '../ipv4.ts';
import { IPV6_HEADER_LENGTH, type Ipv6ExtensionHeader, type Ipv6Packet } from '../ipv6.ts';
import type { IpVersion } from '../types.ts';
import { QUOTE_V4, QUOTE_V6 } from './icmp-out.ts';

const EMPTY = new Uint8Array(0);

export interface ReassemblyOptions {
  /** RFC 791 leaves it to the implementation; 30 s like Linux. */
  timeoutV4Ms?: number;
  /** RFC 8200 §4.5: 60 s. */
  timeoutV6Ms?: number;
  limits?: Partial<Omit<ReassemblyLimits, 'timeoutMs'>>;
}

/** A datagram given up at its deadline; `header` and `quote` when its first fragment came. */
export type ExpiredDatagram =
  | { version: 4; expired: ReassemblyExpired<Ipv4Packet> }
  | { version: 6; expired: ReassemblyExpired<Ipv6Packet> };

export class HostReassembly {
  private readonly v4: Reassembler<Ipv4Packet>;
  private readonly v6: Reassembler<Ipv6Packet>;

  constructor(opts: ReassemblyOptions, counters: Counters) {
    const limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...definedOnly(opts.limits ?? {}) };
    this.v4 = new Reassembler({ ...limits, timeoutMs: opts.timeoutV4Ms ?? 30_000 }, counters);
    this.v6 = new Reassembler({ ...limits, timeoutMs: opts.timeoutV6Ms ?? 60_000 }, counters);
  }

  get size(): number {
    return this.v4.size + this.v6.size;
  }

  get bufferedBytes(): number {
    return this.v4.bufferedBytes + this.v6.bufferedBytes;
  }

  /**
   * An IPv4 fragment (`b` its bytes as received, `headerLength` its header's). The datagram
   * when this fragment completes it.
   */
  add4(p: Ipv4Packet, b: Uint8Array, headerLength: number, now: number): Reassembled<Ipv4Packet> | undefined {
    const first = p.fragmentOffset === 0;
    return this.v4.add(
      {
        // RFC 791 §3.2: fragments belong together when src, dst, protocol and id agree.
        key: `${p.src}|${p.dst}|${p.protocol}|${p.identification}`,
        source: p.src,
        offset: p.fragmentOffset * 8,
        more: p.moreFragments,
        data: p.payload,
        header: first ? { ...p, payload: EMPTY } : p,
        quote: first ? b.subarray(0, Math.min(b.length, headerLength + QUOTE_V4)) : undefined,
      },
      now,
    );
  }

  /**
   * An IPv6 fragment: `p` with its Fragment header `fh`, and the Per-Fragment headers
   * before it (RFC 8200 §4.5), which the reassembled datagram keeps.
   */
  add6(
    p: Ipv6Packet,
    b: Uint8Array,
    fh: Extract<Ipv6ExtensionHeader, { kind: 'fragment' }>,
    perFragment: Ipv6ExtensionHeader[],
    now: number,
  ): Reassembled<Ipv6Packet> | undefined {
    const offset = fh.fragmentOffset * 8;
    const first = offset === 0;
    return this.v6.add(
      {
        // RFC 8200 §4.5: fragments belong together when src, dst and Identification agree.
        key: `${p.src}|${p.dst}|${fh.identification}`,
        source: p.src,
        offset,
        more: fh.moreFragments,
        data: p.payload,
        header: first ? { ...p, extensionHeaders: perFragment, payload: EMPTY } : p,
        quote: first ? b.subarray(0, Math.min(b.length, IPV6_HEADER_LENGTH + QUOTE_V6)) : undefined,
      },
      now,
    );
  }

  /** The earliest deadline of either queue. */
  nextTimeout(): number | undefined {
    const a = this.v4.nextTimeout();
    const b = this.v6.nextTimeout();
    return a === undefined ? b : b === undefined ? a : Math.min(a, b);
  }

  /** Datagrams whose time ran out at `now`, IPv4's first. */
  expire(now: number): ExpiredDatagram[] {
    const out: ExpiredDatagram[] = [];
    for (const expired of this.v4.expire(now)) out.push({ version: 4, expired });
    for (const expired of this.v6.expire(now)) out.push({ version: 6, expired });
    return out;
  }

  /** The version's timeout, for tests and stats. */
  timeoutMs(version: IpVersion): number {
    return (version === 4 ? this.v4 : this.v6).limits.timeoutMs;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  return r;
}
