/**
 * IPv4 datagrams arriving at the host (RFC 791, RFC 1122 §3.2.1): the header decoded and
 * its checksum checked (§3.2.1.2), sources no host may send from refused (§3.2.1.3), the
 * destination ours, a broadcast or the all-systems group, or dropped (a host does not
 * forward, §3.3.1.6), fragments reassembled before anything else reads them (RFC 791 §3.2),
 * and the datagram handed to ICMP (icmp-in.ts) and to the protocol registered for it, or
 * answered with protocol unreachable (RFC 1122 §3.2.2.1).
 */
import { ParseError, subview } from '@stepwire/wire';
import { ipv4BytesAt, isIpv4LimitedBroadcast, isIpv4Multicast } from '../address.ts';
import { decodeIpv4, encodeIpv4, IPV4, type Ipv4DecodeInfo, type Ipv4Packet } from '../ipv4.ts';
import { IPPROTO_ICMP, type IpDelivery } from '../types.ts';
import { type Cx, dropped, encodeReassembled, type ReceiveContext, traceEvent } from './context.ts';
import { icmpIn } from './icmp-in.ts';
import { icmpUnreachable } from './icmp-out.ts';
import type { HostInterface } from './routing.ts';
import { fields4, summary4 } from './trace.ts';

/**
 * The wire facts decodeIpv4 reports, refilled for each packet rather than allocated: they
 * are read right after the decode, before anything that could receive another packet.
 */
const decodeInfo: Ipv4DecodeInfo = { headerLength: 0, totalLength: 0, headerChecksum: 0, checksumOk: false };

/** One packet whose version nibble is 4, as it arrived on `iface`. */
export function receive4(
  ctx: ReceiveContext,
  cx: Cx,
  b: Uint8Array,
  iface: HostInterface,
  csum?: 'valid' | 'partial',
): void {
  const info = decodeInfo;
  let p: Ipv4Packet;
  try {
    p = decodeIpv4(b, undefined, info);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    // RFC 1122 §3.2.1.2: a datagram whose header checksum fails is silently discarded.
    dropped(
      ctx,
      cx,
      'ipv4',
      e.field === 'checksum' ? 'ipv4.drop.checksum' : 'ipv4.drop.malformed',
      e.message,
    );
    return;
  }
  const { totalLength, headerLength } = info;
  ctx.perPacket.ipv4Rx();
  if (ctx.trace.enabled) traceEvent(ctx, cx, 'ipv4', 'in', summary4(p, totalLength), fields4(p, totalLength));
  const whole = totalLength === b.length ? b : subview(b, 0, totalLength);
  process4(ctx, cx, p, whole, headerLength, iface, csum);
}

/** A decoded datagram (or one put back together from its fragments) from its source checks on. */
function process4(
  ctx: ReceiveContext,
  cx: Cx,
  p: Ipv4Packet,
  b: Uint8Array,
  headerLength: number,
  iface: HostInterface,
  csum?: 'valid' | 'partial',
): void {
  const { local, broadcasts } = ctx.routing;
  // RFC 1122 §3.2.1.3: a broadcast or multicast source is discarded, and so is a
  // loopback source (127/8) arriving on a real interface. (The source's first octet
  // read in place: 224/4 is multicast, RFC 5771.)
  const src0 = b[IPV4.src] as number;
  if ((src0 & 0xf0) === 0xe0 || broadcasts.has(p.src) || (src0 === 127 && iface !== ctx.loopback)) {
    dropped(ctx, cx, 'ipv4', 'ipv4.drop.bad-source', `source ${p.src}`);
    return;
  }
  const toUs = local.has(p.dst);
  const dstBytes = toUs ? undefined : subview(b, IPV4.dst, IPV4.dst + 4);
  const broadcast = dstBytes !== undefined && (broadcasts.has(p.dst) || isIpv4LimitedBroadcast(dstBytes));
  // 224.0.0.1 all-systems (RFC 1112); other groups are not joined.
  const multicast = !toUs && p.dst === '224.0.0.1';
  if (!toUs && !broadcast && !multicast) {
    // A host does not forward (RFC 1122 §3.3.1.6 is off by default).
    dropped(
      ctx,
      cx,
      'ipv4',
      dstBytes !== undefined && isIpv4Multicast(dstBytes) ? 'ipv4.drop.multicast' : 'ipv4.drop.not-for-us',
      p.dst,
    );
    return;
  }
  if (p.moreFragments || p.fragmentOffset !== 0) {
    // RFC 791 §3.2: reassemble before anything else looks at the datagram.
    const done = ctx.reassembly.add4(p, b, headerLength, cx.now);
    if (done === undefined) return;
    const whole = { ...done.header, moreFragments: false, fragmentOffset: 0, payload: done.payload };
    const full = encodeReassembled(ctx, cx, 'ipv4', encodeIpv4, whole);
    if (full === undefined) return;
    if (ctx.trace.enabled) {
      traceEvent(
        ctx,
        cx,
        'ipv4',
        'local',
        `reassembled ${summary4(whole, full.length)}`,
        fields4(whole, full.length),
      );
    }
    process4(ctx, cx, whole, full, full.length - done.payload.length, iface);
    return;
  }
  const d: IpDelivery = {
    version: 4,
    src: p.src,
    dst: p.dst,
    // The header's addresses as bytes beside the text decodeIpv4 formatted (types.ts),
    // from the same cache: no allocation per packet.
    srcBytes: ipv4BytesAt(b, IPV4.src),
    dstBytes: ipv4BytesAt(b, IPV4.dst),
    protocol: p.protocol,
    ttl: p.ttl,
    payload: p.payload,
    ecn: p.ecn,
    // The datagram itself: an ICMP error quotes its leading bytes (icmpQuote cuts them
    // then), so no view is built per packet for the error that almost never comes.
    original: b,
  };
  if (csum !== undefined) d.csum = csum;
  if (p.protocol === IPPROTO_ICMP) icmpIn(ctx, cx, 4, d, broadcast || multicast, iface);
  if (ctx.protocols.has(p.protocol)) {
    ctx.perPacket.ipv4Delivered();
    cx.out.push({ kind: 'deliver', delivery: d });
    return;
  }
  if (p.protocol === IPPROTO_ICMP) return;
  dropped(ctx, cx, 'ipv4', 'ipv4.drop.unknown-protocol', `protocol ${p.protocol}`);
  // RFC 1122 §3.2.2.1: protocol unreachable for an upper layer nobody speaks.
  if (!broadcast && !multicast) icmpUnreachable(ctx, cx, d, 'protocol');
}
