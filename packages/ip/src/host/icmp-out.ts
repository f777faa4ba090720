/**
 * ICMP errors this host sends: when it may (RFC 1122 §3.2.2, RFC 1812 §4.3.2 for ICMPv4;
 * RFC 4443 §2.4 for ICMPv6), how much of the offending datagram it quotes, what each
 * refusal is called (unreachable, RFC 792 / RFC 4443 §3.1; parameter problem, RFC 8200 §4),
 * and the token bucket every error must pass (RFC 4443 §2.4(f)).
 */
import { ParseError } from '@stepwire/wire';
import { isIpv4LimitedBroadcast, isIpv4Multicast, isIpv6Multicast, isUnspecified } from '../address.ts';
import {
  encodeIcmpv4,
  encodeIcmpv6,
  ICMPV4_UNREACH,
  ICMPV6_PARAM,
  ICMPV6_UNREACH,
  type IcmpMessage,
  isIcmpv4ErrorType,
  isIcmpv6ErrorType,
} from '../icmp.ts';
import { IPV4, IPV4_MIN_HEADER } from '../ipv4.ts';
import type { Ipv6DecodeInfo, Ipv6Packet } from '../ipv6.ts';
import { decodeIpv6, IPV6, IPV6_HEADER_LENGTH } from '../ipv6.ts';
import type { IpDelivery } from '../types.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type IpVersion } from '../types.ts';
import { type CoreContext, type Cx, dropped } from './context.ts';

/** RFC 1812 §4.3.2.3: quote as much as fits in a 576-byte ICMP datagram. */
export const QUOTE_V4 = 576 - IPV4_MIN_HEADER - 8;
/** RFC 4443 §2.4(c): as much as fits without exceeding the minimum IPv6 MTU. */
export const QUOTE_V6 = 1280 - IPV6_HEADER_LENGTH - 8;

/** Why an error is not sent; each reason is counted as `<layer>.error.suppressed.<why>`. */
export type IcmpSuppression = 'malformed' | 'fragment' | 'icmp-error' | 'to-group' | 'bad-source';

/** The offending datagram: its addresses (text and bytes, as IpDelivery has them) and its leading bytes. */
export interface OffendingDatagram {
  src: string;
  dst: string;
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
  original: Uint8Array;
}

/** An offending datagram whose addresses are read from its own header, which `original` starts with. */
export function offendingDatagram(
  version: IpVersion,
  src: string,
  dst: string,
  original: Uint8Array,
): OffendingDatagram {
  return version === 4
    ? {
        src,
        dst,
        srcBytes: original.subarray(IPV4.src, IPV4.src + 4),
        dstBytes: original.subarray(IPV4.dst, IPV4.dst + 4),
        original,
      }
    : {
        src,
        dst,
        srcBytes: original.subarray(IPV6.src, IPV6.src + 16),
        dstBytes: original.subarray(IPV6.dst, IPV6.dst + 16),
        original,
      };
}

/**
 * RFC 1122 §3.2.2 / RFC 4443 §2.4(e): never an error about an ICMP error, a datagram to or
 * from a broadcast or multicast address, or a fragment other than the first. An IPv6
 * Parameter Problem about an unrecognized option whose type asks for it (RFC 8200 §4.2,
 * action 2) may answer a multicast destination: `multicastDstOk`.
 */
export function icmpErrorSuppressed(
  version: IpVersion,
  off: OffendingDatagram,
  broadcasts: ReadonlySet<string>,
  multicastDstOk: boolean,
): IcmpSuppression | 'no-address' | undefined {
  const o = off.original;
  const { srcBytes, dstBytes } = off;
  if (srcBytes.length !== (version === 4 ? 4 : 16) || dstBytes.length !== srcBytes.length)
    return 'no-address';
  if (version === 4) {
    const hl = o.length >= IPV4_MIN_HEADER ? ((o[0] ?? 0) & 0x0f) * 4 : 0;
    if (hl < IPV4_MIN_HEADER) return 'malformed';
    if (((((o[6] ?? 0) & 0x1f) << 8) | (o[7] ?? 0)) !== 0) return 'fragment';
    if (o[9] === IPPROTO_ICMP && (o.length <= hl || isIcmpv4ErrorType(o[hl] ?? 0))) return 'icmp-error';
    if (isIpv4Multicast(dstBytes) || broadcasts.has(off.dst) || isIpv4LimitedBroadcast(dstBytes))
      return 'to-group';
    if (
      isIpv4Multicast(srcBytes) ||
      broadcasts.has(off.src) ||
      isUnspecified(srcBytes) ||
      srcBytes[0] === 127
    )
      return 'bad-source';
    return undefined;
  }
  try {
    const q = decodeIpv6(o, { truncated: true });
    const fh = q.extensionHeaders.find((h) => h.kind === 'fragment');
    if (fh?.kind === 'fragment' && fh.fragmentOffset !== 0) return 'fragment';
    if (q.nextHeader === IPPROTO_ICMPV6 && (q.payload.length === 0 || isIcmpv6ErrorType(q.payload[0] ?? 0)))
      return 'icmp-error';
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return 'malformed';
  }
  if (isIpv6Multicast(dstBytes) && !multicastDstOk) return 'to-group';
  if (isIpv6Multicast(srcBytes) || isUnspecified(srcBytes)) return 'bad-source';
  return undefined;
}

/** The quote an error carries: the datagram's leading bytes, no more than the RFC allows. */
export function icmpQuote(version: IpVersion, original: Uint8Array): Uint8Array {
  return original.subarray(0, Math.min(original.length, version === 4 ? QUOTE_V4 : QUOTE_V6));
}

// ---- sending errors (called by IpCore with its context) ---------------------------

export function icmpUnreachable(
  ctx: CoreContext,
  cx: Cx,
  d: IpDelivery,
  reason: 'port' | 'protocol' | 'admin',
): void {
  if (d.version === 4) {
    // RFC 792 / RFC 1812 §5.2.7.1 codes.
    const code =
      reason === 'port'
        ? ICMPV4_UNREACH.port
        : reason === 'protocol'
          ? ICMPV4_UNREACH.protocol
          : ICMPV4_UNREACH.adminProhibited;
    sendIcmpError(
      ctx,
      cx,
      4,
      (original) => ({ kind: 'destination-unreachable', code, nextHopMtu: 0, original }),
      d,
    );
    return;
  }
  if (reason === 'protocol') {
    // RFC 8200 §4: IPv6 says "unrecognized Next Header" with a Parameter Problem pointing at it.
    let pointer = 6;
    try {
      const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
      decodeIpv6(d.original, { truncated: true }, info);
      pointer = info.lastNextHeaderOffset;
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
    }
    sendIcmpError(
      ctx,
      cx,
      6,
      (original) => ({ kind: 'parameter-problem', code: ICMPV6_PARAM.nextHeader, pointer, original }),
      d,
    );
    return;
  }
  // RFC 4443 §3.1 codes.
  const code = reason === 'port' ? ICMPV6_UNREACH.port : ICMPV6_UNREACH.adminProhibited;
  sendIcmpError(ctx, cx, 6, (original) => ({ kind: 'destination-unreachable', code, original }), d);
}

export function paramProblem6(
  ctx: CoreContext,
  cx: Cx,
  p: Ipv6Packet,
  b: Uint8Array,
  code: number,
  pointer: number,
  toMulticastOk = false,
): void {
  sendIcmpError(
    ctx,
    cx,
    6,
    (original) => ({ kind: 'parameter-problem', code, pointer, original }),
    offendingDatagram(6, p.src, p.dst, b.subarray(0, Math.min(b.length, IPV6_HEADER_LENGTH + QUOTE_V6))),
    toMulticastOk,
  );
}

/**
 * Send an ICMP error about `off`, unless RFC 1122 §3.2.2 / RFC 4443 §2.4(e) forbid it
 * (see icmp-out.ts). Rate-limited by a token bucket (RFC 4443 §2.4(f)).
 */
export function sendIcmpError(
  ctx: CoreContext,
  cx: Cx,
  version: IpVersion,
  make: (quote: Uint8Array) => IcmpMessage,
  off: OffendingDatagram,
  multicastDstOk = false,
): boolean {
  const why = icmpErrorSuppressed(version, off, ctx.routing.broadcasts, multicastDstOk);
  if (why === 'no-address') return false;
  const layer = version === 4 ? 'icmpv4' : 'icmpv6';
  if (why !== undefined) {
    ctx.counters.inc(`${layer}.error.suppressed.${why}`);
    return false;
  }
  if (!ctx.icmpBucket.take(cx.now)) {
    dropped(
      ctx,
      cx,
      layer,
      `${layer}.error.rate-limited`,
      `error to ${off.src}`,
      version === 4 ? 'RFC 1812 §4.3.2.8' : 'RFC 4443 §2.4(f)',
    );
    return false;
  }
  const quote = icmpQuote(version, off.original);
  // RFC 1812 §4.3.2.4 / RFC 4443 §2.2: from the address the datagram was sent to, if ours.
  let src: string;
  let srcBytes: Uint8Array;
  if (ctx.routing.local.has(off.dst)) {
    src = off.dst;
    srcBytes = off.dstBytes;
  } else {
    const own = ctx.routing.sourceAddressFor(off.src, off.srcBytes);
    if (own === undefined) {
      ctx.counters.inc(`${layer}.error.no-source`);
      return false;
    }
    src = own.address;
    srcBytes = own.addressBytes;
  }
  const m = make(quote);
  const payload = version === 4 ? encodeIcmpv4(m) : encodeIcmpv6(m, srcBytes, off.srcBytes);
  const r = ctx.sendAt(cx, {
    src,
    srcBytes,
    dst: off.src,
    dstBytes: off.srcBytes,
    protocol: version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
    payload,
  });
  if (r.ok) ctx.counters.inc(`${layer}.tx.error`);
  return r.ok;
}
