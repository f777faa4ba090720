import {
  decodeIcmpv4,
  decodeIcmpv6,
  decodeIpv4,
  decodeIpv6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from '@stepwire/ip';
import { decodeSegment } from '@stepwire/tcp';
import { decodeUdp } from '@stepwire/udp';
import { ParseError } from '@stepwire/wire';

/**
 * What our decoders make of one IP packet, for the views that filter and chart: addresses,
 * the connection it belongs to, TCP's sequence space, and — when a decoder refuses it — the
 * layer, the byte offset in the packet and the reason, exactly as the stack would drop it.
 */
export interface PacketFacts {
  src?: string;
  dst?: string;
  /** 'tcp 198.18.0.1:49152 198.18.0.2:80', endpoints sorted: the same for both directions. */
  flow?: string;
  tcp?: { seq: number; len: number; win: number; flags: number };
  refusal?: { layer: string; offset: number; field: string; reason: string };
}

export interface FactsOptions {
  /**
   * Default true: a wrong checksum is a refusal, as our stack would drop the packet. False
   * for captures taken on a host with checksum offload (the kernel fills checksums in after
   * the capture point), as Wireshark does by default.
   */
  verifyChecksums?: boolean;
}

function flowKey(proto: string, a: string, ap: number, b: string, bp: number): string {
  const x = `${a}:${ap}`;
  const y = `${b}:${bp}`;
  return x < y ? `${proto} ${x} ${y}` : `${proto} ${y} ${x}`;
}

export function packetFacts(ip: Uint8Array, options: FactsOptions = {}): PacketFacts {
  const verify = options.verifyChecksums !== false;
  const out: PacketFacts = {};
  const refuse = (layer: string, base: number, e: unknown) => {
    if (!(e instanceof ParseError)) throw e;
    out.refusal = { layer, offset: base + e.offset, field: e.field, reason: e.reason };
  };
  const version = ip.length > 0 ? ip[0]! >> 4 : 0;
  let protocol: number;
  let payload: Uint8Array;
  let base: number;
  try {
    if (version === 4) {
      const p = decodeIpv4(ip, { verifyChecksum: verify });
      out.src = p.src;
      out.dst = p.dst;
      if (p.fragmentOffset !== 0 || p.moreFragments) return out;
      protocol = p.protocol;
      payload = p.payload;
    } else if (version === 6) {
      const p = decodeIpv6(ip);
      out.src = p.src;
      out.dst = p.dst;
      if (
        p.extensionHeaders.some((h) => h.kind === 'fragment' && (h.fragmentOffset !== 0 || h.moreFragments))
      )
        return out;
      protocol = p.nextHeader;
      payload = p.payload;
    } else {
      out.refusal = {
        layer: 'ip',
        offset: 0,
        field: 'version',
        reason: `IP version ${version} is neither 4 nor 6`,
      };
      return out;
    }
    base = ip.length - payload.length;
  } catch (e) {
    refuse(version === 4 ? 'IPv4' : 'IPv6', 0, e);
    return out;
  }
  const src = out.src!;
  const dst = out.dst!;
  try {
    if (protocol === IPPROTO_TCP) {
      const s = decodeSegment(payload, { src, dst }, { verifyChecksum: verify });
      out.flow = flowKey('tcp', src, s.srcPort, dst, s.dstPort);
      out.tcp = { seq: s.seq >>> 0, len: s.payload.length, win: s.window, flags: s.flags };
    } else if (protocol === IPPROTO_UDP) {
      const d = decodeUdp(payload, { src, dst }, { verifyChecksum: verify });
      out.flow = flowKey('udp', src, d.srcPort, dst, d.dstPort);
    } else if (protocol === IPPROTO_ICMP && version === 4) {
      decodeIcmpv4(payload, { verifyChecksum: verify });
    } else if (protocol === IPPROTO_ICMPV6 && version === 6) {
      decodeIcmpv6(payload, src, dst, { verifyChecksum: verify });
    }
  } catch (e) {
    const name = protocol === IPPROTO_TCP ? 'TCP' : protocol === IPPROTO_UDP ? 'UDP' : 'ICMP';
    refuse(name, base, e);
  }
  return out;
}
