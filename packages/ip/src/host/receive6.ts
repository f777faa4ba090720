/**
 * IPv6 datagrams arriving at the host (RFC 8200 §3-§4, RFC 4291): the header decoded,
 * sources no host may send from refused (RFC 4291 §2.5.2, §2.7), the destination ours or
 * all-nodes, or dropped; the extension headers then worked in the order they come
 * (RFC 8200 §4.1): Hop-by-Hop and Destination Options with the action bits of unrecognized
 * options (§4.2), Routing with Segments Left (§4.4), Fragment with its checks and
 * reassembly (§4.5, RFC 7112 for the first fragment's chain, RFC 6946 for atomic
 * fragments); last the upper layer, handed to ICMPv6 (icmp-in.ts) and to the protocol
 * registered for it, or answered with Parameter Problem pointing at the Next Header (§4).
 */
import { ParseError, subview } from '@stepwire/wire';
import { ipv6BytesAt, isIpv6Multicast, isUnspecified } from '../address.ts';
import { ICMPV6_PARAM } from '../icmp.ts';
import {
  decodeIpv6,
  decodeIpv6ExtensionChain,
  encodeIpv6,
  IPV6,
  IPV6_HEADER_LENGTH,
  type Ipv6DecodeInfo,
  type Ipv6ExtensionHeader,
  type Ipv6Packet,
  NH_NO_NEXT_HEADER,
} from '../ipv6.ts';
import { IPPROTO_ICMPV6, type IpDelivery } from '../types.ts';
import { type Cx, dropped, encodeReassembled, type ReceiveContext, traceEvent } from './context.ts';
import { chainComplete, icmpIn } from './icmp-in.ts';
import { paramProblem6 } from './icmp-out.ts';
import type { HostInterface } from './routing.ts';
import { fields6, summary6 } from './trace.ts';

/** One packet whose version nibble is 6, as it arrived on `iface`. */
export function receive6(
  ctx: ReceiveContext,
  cx: Cx,
  b: Uint8Array,
  iface: HostInterface,
  csum?: 'valid' | 'partial',
): void {
  const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
  let p: Ipv6Packet;
  try {
    p = decodeIpv6(b, undefined, info);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    dropped(ctx, cx, 'ipv6', 'ipv6.drop.malformed', e.message);
    return;
  }
  const end = IPV6_HEADER_LENGTH + info.payloadLength;
  ctx.perPacket.ipv6Rx();
  if (ctx.trace.enabled) traceEvent(ctx, cx, 'ipv6', 'in', summary6(p, end), fields6(p, end));
  process6(ctx, cx, p, end === b.length ? b : subview(b, 0, end), info, iface, csum);
}

/** A decoded datagram (or one put back together from its fragments) from its source checks on. */
function process6(
  ctx: ReceiveContext,
  cx: Cx,
  p: Ipv6Packet,
  b: Uint8Array,
  info: Ipv6DecodeInfo,
  iface: HostInterface,
  csum?: 'valid' | 'partial',
): void {
  const srcBytes = ipv6BytesAt(b, IPV6.src);
  if (isIpv6Multicast(srcBytes) || isUnspecified(srcBytes) || (p.src === '::1' && iface !== ctx.loopback)) {
    // RFC 4291 §2.7: multicast never a source; '::' only in address configuration we do not run.
    dropped(ctx, cx, 'ipv6', 'ipv6.drop.bad-source', `source ${p.src}`);
    return;
  }
  const toUs = ctx.routing.local.has(p.dst);
  const dstBytes = ipv6BytesAt(b, IPV6.dst);
  const multicast = !toUs && isIpv6Multicast(dstBytes);
  if (!toUs) {
    if (!multicast) {
      dropped(ctx, cx, 'ipv6', 'ipv6.drop.not-for-us', p.dst);
      return;
    }
    // All-nodes (RFC 4291 §2.7.1) is ours; router solicitations (ff02::2), solicited-node
    // and MLD groups from a kernel are dropped quietly: a TUN link has no neighbours.
    if (p.dst !== 'ff02::1' && p.dst !== 'ff01::1') {
      ctx.counters.inc('ipv6.drop.multicast');
      return;
    }
  }
  const hs = p.extensionHeaders;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    const at = info.extOffsets[i];
    if (h === undefined || at === undefined) break;
    if (h.kind === 'hop-by-hop' || h.kind === 'destination') {
      if (!checkOptions6(ctx, cx, p, b, at, multicast)) return;
    } else if (h.kind === 'routing') {
      // RFC 8200 §4.4: no Routing type is recognized here (type 0 is deprecated, RFC 5095),
      // so one with Segments Left > 0 is refused, pointing at the Routing Type field.
      if (h.segmentsLeft !== 0) {
        dropped(ctx, cx, 'ipv6', 'ipv6.drop.routing-header', `routing type ${h.routingType}`);
        if (!multicast) paramProblem6(ctx, cx, p, b, ICMPV6_PARAM.header, at + 2);
        return;
      }
    } else if (h.kind === 'fragment') {
      fragment6(ctx, cx, p, b, h, i, at, iface, multicast);
      return;
    }
  }
  const d: IpDelivery = {
    version: 6,
    src: p.src,
    dst: p.dst,
    // The header's addresses as bytes beside the text (types.ts), from the format cache.
    srcBytes,
    dstBytes,
    protocol: p.nextHeader,
    ttl: p.hopLimit,
    payload: p.payload,
    ecn: p.trafficClass & 3,
    // The datagram itself: an ICMP error quotes its leading bytes (icmpQuote cuts them
    // then), so no view is built per packet for the error that almost never comes.
    original: b,
  };
  if (csum !== undefined) d.csum = csum;
  if (p.nextHeader === IPPROTO_ICMPV6) icmpIn(ctx, cx, 6, d, multicast, iface);
  if (ctx.protocols.has(p.nextHeader)) {
    ctx.perPacket.ipv6Delivered();
    cx.out.push({ kind: 'deliver', delivery: d });
    return;
  }
  if (p.nextHeader === IPPROTO_ICMPV6) return;
  if (p.nextHeader === NH_NO_NEXT_HEADER) {
    ctx.counters.inc('ipv6.no-next-header');
    return;
  }
  dropped(ctx, cx, 'ipv6', 'ipv6.drop.unknown-next-header', `next header ${p.nextHeader}`);
  // RFC 8200 §4: Parameter Problem code 1 pointing at the unrecognized Next Header.
  if (!multicast) paramProblem6(ctx, cx, p, b, ICMPV6_PARAM.nextHeader, info.lastNextHeaderOffset);
}

/** RFC 8200 §4.2: the two high bits of an unrecognized option's type say what to do. */
function checkOptions6(
  ctx: ReceiveContext,
  cx: Cx,
  p: Ipv6Packet,
  b: Uint8Array,
  at: number,
  multicast: boolean,
): boolean {
  const end = at + ((b[at + 1] ?? 0) + 1) * 8;
  let pos = at + 2;
  while (pos < end) {
    const type = b[pos] ?? 0;
    if (type === 0) {
      pos++;
      continue;
    }
    // PadN (1) and Router Alert (5, RFC 2711) are understood; Router Alert needs no action at a host.
    if (type !== 1 && type !== 5) {
      const action = type >> 6;
      if (action !== 0) {
        dropped(ctx, cx, 'ipv6', 'ipv6.drop.unknown-option', `option 0x${type.toString(16)}`);
        if (action === 2 || (action === 3 && !multicast))
          paramProblem6(ctx, cx, p, b, ICMPV6_PARAM.option, pos, true);
        return false;
      }
    }
    pos += 2 + (b[pos + 1] ?? 0);
  }
  return true;
}

/** RFC 8200 §4.5: a datagram with a Fragment header, checked, then reassembled or taken alone. */
function fragment6(
  ctx: ReceiveContext,
  cx: Cx,
  p: Ipv6Packet,
  b: Uint8Array,
  fh: Extract<Ipv6ExtensionHeader, { kind: 'fragment' }>,
  index: number,
  at: number,
  iface: HostInterface,
  multicast: boolean,
): void {
  const len = p.payload.length;
  const offset = fh.fragmentOffset * 8;
  // RFC 8200 §4.5: a non-last fragment must be a multiple of 8 octets...
  if (fh.moreFragments && (len === 0 || (len & 7) !== 0)) {
    dropped(ctx, cx, 'ipv6', 'reasm.drop.bad-length', `fragment of ${len} bytes`);
    if (!multicast) paramProblem6(ctx, cx, p, b, ICMPV6_PARAM.header, 4);
    return;
  }
  // ... and none may reach past 65535 octets of fragmentable part.
  if (offset + len > 0xffff) {
    dropped(ctx, cx, 'ipv6', 'reasm.drop.too-long', `fragment ends at ${offset + len}`);
    if (!multicast) paramProblem6(ctx, cx, p, b, ICMPV6_PARAM.header, at + 2);
    return;
  }
  // RFC 8200 §4.5 (after RFC 7112): the first fragment must hold the whole header chain up
  // to the upper-layer header; otherwise Parameter Problem code 3 with pointer zero.
  if (offset === 0 && fh.moreFragments && !chainComplete(p.nextHeader, p.payload)) {
    dropped(ctx, cx, 'ipv6', 'ipv6.drop.incomplete-chain', 'first fragment lacks the upper-layer header');
    if (!multicast) paramProblem6(ctx, cx, p, b, 3, 0);
    return;
  }
  const perFragment = p.extensionHeaders.slice(0, index);
  let whole: Ipv6Packet;
  if (offset === 0 && !fh.moreFragments) {
    // RFC 6946: an atomic fragment is processed alone, never mixed with queued fragments.
    ctx.counters.inc('ipv6.atomic-fragment');
    whole = { ...p, extensionHeaders: perFragment };
  } else {
    const done = ctx.reassembly.add6(p, b, fh, perFragment, cx.now);
    if (done === undefined) return;
    whole = { ...done.header, payload: done.payload };
  }
  // Rebuild the datagram without its Fragment header and run it through the normal path,
  // so that the rest of the chain, offsets for ICMP pointers and quotes all come out right.
  let chain: ReturnType<typeof decodeIpv6ExtensionChain>;
  try {
    chain = decodeIpv6ExtensionChain(whole.nextHeader, whole.payload);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    dropped(ctx, cx, 'ipv6', 'ipv6.drop.malformed', `reassembled: ${e.message}`);
    return;
  }
  if (chain.headers.some((h) => h.kind === 'fragment')) {
    dropped(ctx, cx, 'ipv6', 'ipv6.drop.malformed', 'nested Fragment header');
    return;
  }
  const rebuilt: Ipv6Packet = {
    ...whole,
    extensionHeaders: [...whole.extensionHeaders, ...chain.headers],
    nextHeader: chain.nextHeader,
    payload: whole.payload.subarray(chain.payloadOffset),
  };
  const full = encodeReassembled(ctx, cx, 'ipv6', encodeIpv6, rebuilt);
  if (full === undefined) return;
  const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
  const again = decodeIpv6(full, undefined, info);
  if (ctx.trace.enabled) {
    traceEvent(
      ctx,
      cx,
      'ipv6',
      'local',
      `reassembled ${summary6(again, full.length)}`,
      fields6(again, full.length),
    );
  }
  process6(ctx, cx, again, full, info, iface);
}
