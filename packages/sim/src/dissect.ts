import {
  decodeIpv4,
  decodeIpv6,
  describeIcmp,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv6Packet,
} from '@stepwire/ip';
import { decodeSegment, describeSegment } from '@stepwire/tcp';
import { decodeUdp } from '@stepwire/udp';
import { ParseError } from '@stepwire/wire';

/**
 * One line for a raw IP packet, every layer decoded, as the ladder and `stepwire serve
 * --trace` print it: 'IPv4 198.18.0.1→198.18.0.2 ICMP echo request id=1 seq=1 len=84'.
 * Like a protocol analyser, it never throws: what does not decode is said to be malformed.
 */
export function dissect(packet: Uint8Array): string {
  const version = packet[0] === undefined ? 0 : packet[0] >> 4;
  try {
    if (version === 4) {
      const p = decodeIpv4(packet, { verifyChecksum: false });
      const first = p.fragmentOffset === 0;
      const frag =
        p.moreFragments || !first
          ? ` frag id=${p.identification} off=${p.fragmentOffset * 8}${p.moreFragments ? ' MF' : ''}`
          : '';
      // Only an unfragmented datagram carries a whole transport header we can check.
      const upper =
        first && !p.moreFragments
          ? transport(4, p.protocol, p.payload, p.src, p.dst)
          : firstBytes(p.protocol, p.payload, first);
      return `IPv4 ${p.src}→${p.dst} ${upper}${frag} [${packet.length} B]`;
    }
    if (version === 6) {
      const p = decodeIpv6(packet);
      const fh = fragmentHeader(p);
      const frag = fh
        ? ` frag id=${fh.identification} off=${fh.fragmentOffset * 8}${fh.moreFragments ? ' M' : ''}`
        : '';
      const whole = !fh || (fh.fragmentOffset === 0 && !fh.moreFragments);
      const upper = whole
        ? transport(6, p.nextHeader, p.payload, p.src, p.dst)
        : firstBytes(p.nextHeader, p.payload, fh.fragmentOffset === 0);
      return `IPv6 ${p.src}→${p.dst} ${upper}${frag} [${packet.length} B]`;
    }
    return `not IP (version ${version}) len=${packet.length}`;
  } catch (e) {
    if (e instanceof ParseError) return `malformed: ${e.message}`;
    throw e;
  }
}

function fragmentHeader(p: Ipv6Packet) {
  for (const h of p.extensionHeaders) if (h.kind === 'fragment') return h;
  return undefined;
}

/** A first fragment still shows the ports; its checksum covers bytes not yet here. */
function firstBytes(protocol: number, payload: Uint8Array, first: boolean): string {
  if (first && (protocol === IPPROTO_UDP || protocol === IPPROTO_TCP) && payload.length >= 4) {
    return `${proto(protocol)} ${(payload[0]! << 8) | payload[1]!}→${(payload[2]! << 8) | payload[3]!}`;
  }
  return proto(protocol);
}

function proto(n: number): string {
  return n === IPPROTO_TCP
    ? 'TCP'
    : n === IPPROTO_UDP
      ? 'UDP'
      : n === IPPROTO_ICMP || n === IPPROTO_ICMPV6
        ? 'ICMP'
        : `proto=${n}`;
}

function transport(version: 4 | 6, protocol: number, payload: Uint8Array, src: string, dst: string): string {
  try {
    if (protocol === IPPROTO_UDP) {
      const d = decodeUdp(payload, { src, dst });
      return `UDP ${d.srcPort}→${d.dstPort} len=${d.payload.length}`;
    }
    if (protocol === IPPROTO_TCP) {
      const s = decodeSegment(payload, { src, dst });
      return `TCP ${s.srcPort}→${s.dstPort} ${describeSegment(s)}`;
    }
    if (protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) return describeIcmp(version, payload);
    return proto(protocol);
  } catch (e) {
    if (e instanceof ParseError) return `${proto(protocol)} malformed (${e.field}: ${e.reason})`;
    throw e;
  }
}
