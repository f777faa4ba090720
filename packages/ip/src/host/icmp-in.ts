/**
 * Reading an ICMP error that arrived (RFC 1122 §3.2.2 and §4.1.3.3, RFC 4443 §3): which of
 * our datagrams it is about, what it says, and what it teaches about the path MTU
 * (RFC 1191 §4, RFC 8201 §4).
 */
import { ParseError } from '@stepwire/wire';
import { ICMPV4_UNREACH, type IcmpMessage } from '../icmp.ts';
import { decodeIpv4, type Ipv4DecodeInfo } from '../ipv4.ts';
import { decodeIpv6, decodeIpv6ExtensionChain } from '../ipv6.ts';
import type { IcmpErrorReport, IpVersion } from '../types.ts';

/** RFC 1191 §7 plateau table, for frag-needed messages from routers that leave Next-Hop MTU zero. */
export const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** An ICMP error message kind, as decoded. */
export type IcmpErrorMessage = Extract<
  IcmpMessage,
  { kind: 'destination-unreachable' | 'packet-too-big' | 'time-exceeded' | 'parameter-problem' }
>;

/** What an arriving error says, before anyone decides whether to believe it. */
export interface IcmpErrorRead {
  report: IcmpErrorReport;
  /** False when the quote is of a fragment other than the first: no transport header to match. */
  firstFragment: boolean;
}

export function isIcmpErrorMessage(m: IcmpMessage): m is IcmpErrorMessage {
  return (
    m.kind === 'destination-unreachable' ||
    m.kind === 'packet-too-big' ||
    m.kind === 'time-exceeded' ||
    m.kind === 'parameter-problem'
  );
}

/** True when `bytes` hold a whole IPv6 extension chain starting at `first` (RFC 8200 §4, RFC 7112). */
export function chainComplete(first: number, bytes: Uint8Array): boolean {
  try {
    decodeIpv6ExtensionChain(first, bytes);
    return true;
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return false;
  }
}

/**
 * Decode the datagram an error quotes and say what the error reports about it. Throws
 * ParseError when the quote does not decode.
 */
export function readIcmpError(version: IpVersion, reporter: string, m: IcmpErrorMessage): IcmpErrorRead {
  let src: string;
  let dst: string;
  let protocol: number;
  let quoted: Uint8Array;
  let firstFragment = true;
  let quotedTotal = 0;
  if (version === 4) {
    const q = decodeIpv4(m.original, { truncated: true, verifyChecksum: false }, {} as Ipv4DecodeInfo);
    src = q.src;
    dst = q.dst;
    protocol = q.protocol;
    quoted = q.payload;
    firstFragment = q.fragmentOffset === 0;
    // The quoted header's Total Length: what the router could not forward.
    quotedTotal = ((m.original[2] ?? 0) << 8) | (m.original[3] ?? 0);
  } else {
    const q = decodeIpv6(m.original, { truncated: true });
    src = q.src;
    dst = q.dst;
    protocol = q.nextHeader;
    quoted = q.payload;
    const fh = q.extensionHeaders.find((h) => h.kind === 'fragment');
    if (fh?.kind === 'fragment') {
      firstFragment = fh.fragmentOffset === 0;
      // The quote may end inside the chain; then the transport stays unknown.
      if (firstFragment && chainComplete(q.nextHeader, q.payload)) {
        const chain = decodeIpv6ExtensionChain(q.nextHeader, q.payload);
        protocol = chain.nextHeader;
        quoted = q.payload.subarray(chain.payloadOffset);
      }
    }
  }
  let kind: IcmpErrorReport['kind'];
  let mtu: number | undefined;
  if (m.kind === 'destination-unreachable') {
    if (version === 4 && m.code === ICMPV4_UNREACH.fragmentationNeeded) {
      // Reported as 'packet-too-big': the same news as ICMPv6 type 2 (RFC 1191), and not a
      // hard error for transports (RFC 1122 §4.2.3.9 predates path MTU discovery).
      kind = 'packet-too-big';
      mtu = m.nextHopMtu ?? 0;
      // RFC 1191 §5: an old router leaves Next-Hop MTU zero; guess the next plateau down.
      if (mtu === 0 || mtu >= quotedTotal) mtu = PLATEAUS.find((x) => x < quotedTotal) ?? 68;
    } else {
      kind = 'unreachable';
    }
  } else if (m.kind === 'packet-too-big') {
    kind = 'packet-too-big';
    mtu = m.mtu;
  } else {
    kind = m.kind;
  }
  return {
    report: { version, kind, code: m.code, reporter, src, dst, protocol, quoted, mtu },
    firstFragment,
  };
}
