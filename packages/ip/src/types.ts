import type { LinkOffloads } from '@stepwire/link';
import type { Clock, Counters, Prng, TraceBus } from '@stepwire/wire';

/**
 * The contract between the IP layer and the transports above it (UDP, TCP, ICMP users).
 * IP dispatches by protocol number through this registry, so ip never imports udp or tcp.
 *
 * Addresses travel in two forms side by side. The canonical string is the identity: dotted
 * quad for IPv4 ('198.18.0.1'), RFC 5952 text for IPv6 ('fd00:5757::1'); comparable with
 * ===, usable as a map key, what Node-shaped APIs report (`remoteAddress`). The bytes (4 or
 * 16, network order) are what headers and checksums need, and travel beside the string
 * (`srcBytes`/`dstBytes`) so that no layer parses text another layer formatted: IP formats
 * a received header's addresses for the identity and hands up their bytes from the same
 * cache; a transport parses an address once (bind, connect) and hands IP the bytes.
 * The two forms always name the same address.
 */
export type IpVersion = 4 | 6;

/**
 * One address in both forms (see above), named as everywhere else: the text under the name,
 * the bytes under the name + 'Bytes'. An interface's Prefix is one.
 */
export interface IpAddress {
  readonly address: string;
  readonly addressBytes: Uint8Array;
}

/** A reassembled datagram as delivered to an upper-layer protocol. */
export interface IpDelivery {
  version: IpVersion;
  src: string;
  dst: string;
  /**
   * `src` and `dst` as bytes (4 or 16), for the transport's pseudo-header (RFC 768,
   * RFC 9293 §3.1, RFC 8200 §8.1) without parsing the strings back. Arrays of their own,
   * shared by every delivery from or to that address (address.ts's format cache hands them
   * out beside the text: no allocation per packet): read them, keep them, never write them.
   */
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
  /** IPv4 protocol / IPv6 final next-header. */
  protocol: number;
  /** TTL or hop limit as received. */
  ttl: number;
  payload: Uint8Array;
  /**
   * The ECN field as received (RFC 3168 §5: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE): the
   * two low bits of the IPv4 TOS byte or of the IPv6 Traffic Class, for TCP's ECN.
   */
  ecn?: number;
  /**
   * What the link said of the transport checksum (PacketInfo.csum): 'valid', already
   * verified (the kernel did it); 'partial', left for offload by a sender on this machine
   * and never completed. Either way the transport need not (cannot) verify it.
   */
  csum?: 'valid' | 'partial';
  /**
   * The datagram as it arrived, header first, kept so an upper layer can ask for an ICMP
   * error quoting its leading bytes (RFC 792, RFC 4443 §2.4(c); icmpQuote cuts the quote).
   */
  original: Uint8Array;
}

/** What an ICMP error said about a datagram this host sent (RFC 1122 §4.1.3.3, §4.2.3.9). */
export interface IcmpErrorReport {
  version: IpVersion;
  /** 'unreachable' (ICMPv4 type 3 / ICMPv6 type 1), 'packet-too-big', 'time-exceeded', 'parameter-problem' */
  kind: 'unreachable' | 'packet-too-big' | 'time-exceeded' | 'parameter-problem';
  code: number;
  /** The host that sent the ICMP error. */
  reporter: string;
  /** Fields of the quoted (offending) datagram. */
  src: string;
  dst: string;
  /** `src` and `dst` as bytes, shared like IpDelivery's: never write them. */
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
  protocol: number;
  /** Quoted transport bytes (at least the first 8: ports for UDP/TCP). */
  quoted: Uint8Array;
  /** Next-hop MTU for fragmentation-needed / packet-too-big. */
  mtu?: number;
}

export interface IpProtocolHandler {
  receive(d: IpDelivery): void;
  receiveIcmpError?(e: IcmpErrorReport): void;
}

export interface SendOptions {
  /** Source address; chosen from the route to dst when omitted. */
  src?: string;
  dst: string;
  /**
   * `src` and `dst` as bytes (4 or 16), when the sender holds them: IP then routes and
   * writes the header from them and never parses the strings, which still name the
   * addresses for its tables (local addresses, path MTU). They must be the same addresses;
   * IP reads them during send() only. Without them IP parses the text (cached).
   */
  srcBytes?: Uint8Array;
  dstBytes?: Uint8Array;
  protocol: number;
  payload: Uint8Array;
  ttl?: number;
  /** IPv4 DF bit (default false). For IPv6, forbids source fragmentation. */
  dontFragment?: boolean;
  /** The ECN codepoint to send with (RFC 3168 §5; default 0, Not-ECT). */
  ecn?: number;
  /**
   * Header room: this many bytes of `payload.buffer` right before `payload` are the
   * sender's to lend, and IP writes its header there instead of copying the payload into
   * a new packet (Linux's skb headroom). IPv4 needs 20, IPv6 40; with less IP copies.
   */
  headroom?: number;
  /**
   * The transport checksum field at this offset in `payload` holds only the folded
   * pseudo-header sum: the link completes it (PacketInfo.csum 'partial', start at the
   * payload). IP completes it itself when the link cannot or the datagram is fragmented.
   */
  csumOffset?: number;
  /**
   * A TCP super-segment (TSO): `payload` is `transportHeaderLength` bytes of TCP header,
   * then data to be cut into `size`-byte segments by the link (PacketInfo.gso). Only for a
   * link whose offloads say tsoMax covers the whole IP packet; each cut segment must fit
   * the path MTU, the super-segment need not.
   */
  gso?: { size: number; transportHeaderLength: number };
}

/** Ways a send can fail locally; network losses are never reported here. */
export type SendResult =
  | { ok: true }
  | { ok: false; error: 'no-route' | 'too-big' | 'no-source'; mtu?: number };

/** The face a transport sees of its Host. */
export interface IpStack {
  readonly name: string;
  readonly clock: Clock;
  readonly trace: TraceBus;
  readonly prng: Prng;
  readonly counters: Counters;
  registerProtocol(protocol: number, handler: IpProtocolHandler): void;
  send(opts: SendOptions): SendResult;
  /** The source address this host would use to reach dst, or undefined if unroutable. */
  sourceFor(dst: string): string | undefined;
  /**
   * sourceFor with the address's bytes beside its text, for a transport that writes a
   * pseudo-header (`dstBytes`, when held, spares IP parsing dst). The object is the host's
   * own (an interface address): read it, never change it.
   */
  sourceAddressFor(dst: string, dstBytes?: Uint8Array): IpAddress | undefined;
  /** Path MTU toward dst as the host knows it (link MTU, lowered by PTB / frag-needed). */
  mtuFor(dst: string): number;
  /** The offloads of the link toward dst (checksum, TSO), undefined when it has none or there is no route. */
  offloadsFor?(dst: string): LinkOffloads | undefined;
  /** True when addr is one of this host's own addresses. */
  isLocalAddress(addr: string): boolean;
  /** Answer a datagram with ICMP destination-unreachable (rate-limited, RFC 1812 / RFC 4443 §2.4(f)). */
  sendUnreachable(d: IpDelivery, reason: 'port' | 'protocol' | 'admin'): void;
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
