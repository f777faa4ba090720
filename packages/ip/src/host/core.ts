/**
 * IpCore: the sans-I/O heart of an IPv4/IPv6 end host (RFC 1122 §3, RFC 8200, RFC 4443).
 *
 * It owns the routing table, the reassembly queues, the path-MTU cache, the ICMP error
 * token bucket and ping's bookkeeping, and nothing else: no clock, no timer, no link, no
 * callback. Every entry point takes `now` and an `out` list, and appends what the host must
 * do, in the order it must be done:
 *
 *   - `transmit`: put this packet on this interface's link;
 *   - `deliver`: hand this datagram to the protocol registered for it;
 *   - `icmp-error`: tell that protocol an ICMP error arrived about one of its datagrams;
 *   - `echo`: a pending ping ended (reply, ICMP error, timeout, cancelled);
 *   - `trace`: emit this event (built only when `trace.enabled`).
 *
 * Order matters and is kept: a transport that answers a delivery sends after the packets
 * that came before it, and the ladder reads exactly as the work was done. When anything
 * is waiting for time (a reassembly, a ping), `nextTimeout()` says when, and
 * `handleTimeout(now, out)` does what is due.
 *
 * The host does not forward: a datagram for another address is counted and dropped.
 * Counters are named '<layer>.<what>' and every drop is '<layer>.drop.<reason>'.
 *
 * Where each rule lives: this file has the send path (RFC 791 §2.3, RFC 8200 §5) and the
 * receive path (RFC 1122 §3.2.1, RFC 8200 §4); routing.ts the table and longest-prefix
 * match (RFC 1812 §5.2.4.3); reassembly.ts the queues and their deadline (RFC 791 §3.2,
 * RFC 8200 §4.5); pmtu.ts path-MTU memory (RFC 1191, RFC 8201); icmp-in.ts ICMP arriving;
 * icmp-out.ts ICMP errors sent; icmp-rate.ts their token bucket; echo.ts ping's book;
 * trace.ts how packets read on the ladder. driver.ts is Host, which gives all this a clock.
 */
import type { Link, LinkOffloads, PacketInfo } from '@stepwire/link';
import { type Counters, ParseError, type Prng, superSegments, type TraceEvent } from '@stepwire/wire';
import {
  cachedAddressBytes,
  formatIp,
  ipv4BytesAt,
  ipv6BytesAt,
  isIpv4LimitedBroadcast,
  isIpv4Multicast,
  isIpv6Multicast,
  isUnspecified,
  parseIp,
} from '../address.ts';
import { completeChecksum } from '../checksum.ts';
import { fragmentIpv4, fragmentIpv6 } from '../fragment.ts';
import { GSO_MAX_SIZE, type GsoSegments, type GsoSpec, gsoSegment, TCP_GSO_FIELD } from '../gso.ts';
import { encodeIcmpv4, encodeIcmpv6, ICMPV6_PARAM, type IcmpMessage } from '../icmp.ts';
import {
  decodeIpv4,
  encodeIpv4,
  encodeIpv4Into,
  IPV4,
  IPV4_MIN_HEADER,
  type Ipv4DecodeInfo,
  type Ipv4Packet,
} from '../ipv4.ts';
import {
  decodeIpv6,
  decodeIpv6ExtensionChain,
  encodeIpv6,
  encodeIpv6Into,
  IPV6,
  IPV6_HEADER_LENGTH,
  type Ipv6DecodeInfo,
  type Ipv6ExtensionHeader,
  type Ipv6Packet,
  NH_NO_NEXT_HEADER,
} from '../ipv6.ts';
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  type IpAddress,
  type IpDelivery,
  type IpVersion,
  type SendOptions,
  type SendResult,
} from '../types.ts';
import { type CoreContext, type Cx, dropped, type IpAction, traceEvent } from './context.ts';
import { EchoBook, echoData, type PingOptions } from './echo.ts';
import { chainComplete, icmp4In, icmp6In } from './icmp-in.ts';
import {
  icmpUnreachable,
  offendingDatagram,
  paramProblem6,
  QUOTE_V4,
  QUOTE_V6,
  sendIcmpError,
} from './icmp-out.ts';
import { IcmpTokenBucket } from './icmp-rate.ts';
import { PathMtuCache } from './pmtu.ts';
import { HostReassembly } from './reassembly.ts';
import { type HostInterface, type InterfaceConfig, type RouteEntry, RoutingTable } from './routing.ts';
import { fields4, fields6, summary4, summary6 } from './trace.ts';

export type { Cx, IpAction } from './context.ts';

/** The host's tunables: defaults and limits, each with the RFC that sets or suggests it. */
export interface IpTuning {
  /** TTL / Hop Limit of datagrams this host originates (RFC 1700 / RFC 8200 default 64). */
  defaultTtl?: number;
  /** RFC 791 leaves it to the implementation; 30 s like Linux. */
  reassemblyTimeoutV4Ms?: number;
  /** RFC 8200 §4.5: 60 s. */
  reassemblyTimeoutV6Ms?: number;
  maxReassemblyFragmentsPerSource?: number;
  maxReassemblyBytesPerSource?: number;
  maxReassemblyDatagramsPerSource?: number;
  maxReassemblyBytesTotal?: number;
  /** Token-bucket refill rate for ICMP errors this host sends (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)). */
  icmpErrorsPerSecond?: number;
  /** Token-bucket size: how many errors may go out back to back. */
  icmpErrorBurst?: number;
  /** How long a lowered path MTU is believed before the link MTU is tried again (RFC 1191 §6.3, RFC 8201 §5.3: 10 min). */
  pmtuExpiryMs?: number;
  /**
   * Software GSO, as Linux does for every device without TSO (net/core/gso.c): toward a
   * link that cannot cut TCP super-segments, `offloadsFor` reports TSO (and checksum
   * offload, which IP completes itself where the link lacks it) so TCP builds them, and IP
   * cuts each into MTU-sized packets (gso.ts) just before the link. Off by default.
   */
  softwareGso?: boolean;
}

export interface IpCoreOptions extends IpTuning {
  name: string;
  counters: Counters;
  prng: Prng;
  /** The loopback interface's link (interface 0: 127.0.0.1/8 and ::1/128). */
  loopback: Link;
  /** Whether anyone listens to trace events; only read, so events are built only then. */
  trace?: { readonly enabled: boolean };
  /** Time at creation, where the ICMP token bucket starts full. */
  now: number;
}

/** How an echo request went out: pending until its deadline, or failed at once. */
export type EchoStart =
  | { ok: true; echo: number; id: number; seq: number; deadline: number; superseded?: number }
  | {
      ok: false;
      id: number;
      seq: number;
      message: string;
      sendResult?: SendResult;
      superseded?: number;
    };

export interface IpCoreStats {
  pendingEchoes: number;
  reassemblyDatagrams: number;
  reassemblyBytes: number;
  pmtuEntries: number;
}

const NOT_TRACED = { enabled: false };

/** A datagram's addresses as bytes, from the sender or the route, for writing its header. */
interface AddressBytes {
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
}

/**
 * What `offloadsFor` reports under software GSO for a link without TSO: super-segments up
 * to GSO_MAX_SIZE, and a checksum TCP may leave partial — the cut computes each piece's
 * anyway, so TCP summing the whole super-segment first would be work thrown away.
 */
const SOFTWARE_GSO: LinkOffloads = Object.freeze({ checksum: true, tsoMax: GSO_MAX_SIZE });

export class IpCore {
  readonly name: string;
  readonly counters: Counters;
  readonly defaultTtl: number;
  readonly routing = new RoutingTable();
  readonly loopback: HostInterface;
  private readonly trace: { readonly enabled: boolean };
  private readonly softwareGso: boolean;
  private readonly protocols = new Set<number>();
  private readonly reassembly: HostReassembly;
  private readonly pmtu: PathMtuCache;
  private readonly icmpBucket: IcmpTokenBucket;
  private readonly echoes = new EchoBook();
  /** This core's state as the ICMP functions see it (icmp-in.ts, icmp-out.ts). */
  private readonly ctx: CoreContext;
  private nextIpId: number;
  private nextFragId: number;
  private readonly pingId: number;
  private nextPingSeq = 1;

  constructor(opts: IpCoreOptions) {
    this.name = opts.name;
    this.counters = opts.counters;
    this.trace = opts.trace ?? NOT_TRACED;
    this.defaultTtl = opts.defaultTtl ?? 64;
    this.softwareGso = opts.softwareGso === true;
    this.reassembly = new HostReassembly(
      {
        timeoutV4Ms: opts.reassemblyTimeoutV4Ms,
        timeoutV6Ms: opts.reassemblyTimeoutV6Ms,
        limits: {
          maxFragmentsPerSource: opts.maxReassemblyFragmentsPerSource,
          maxBytesPerSource: opts.maxReassemblyBytesPerSource,
          maxDatagramsPerSource: opts.maxReassemblyDatagramsPerSource,
          maxBytesTotal: opts.maxReassemblyBytesTotal,
        },
      },
      this.counters,
    );
    this.icmpBucket = new IcmpTokenBucket(
      opts.icmpErrorsPerSecond ?? 50,
      opts.icmpErrorBurst ?? 10,
      opts.now,
    );
    this.pmtu = new PathMtuCache(opts.pmtuExpiryMs ?? 600_000);
    // Drawn in this order so a seed gives the same identifiers it always did.
    this.nextIpId = opts.prng.u32() & 0xffff;
    this.nextFragId = opts.prng.u32();
    this.pingId = opts.prng.u32() & 0xffff;
    this.ctx = {
      name: this.name,
      counters: this.counters,
      trace: this.trace,
      routing: this.routing,
      protocols: this.protocols,
      echoes: this.echoes,
      pmtu: this.pmtu,
      icmpBucket: this.icmpBucket,
      mtuFor: (dst, now) => this.mtuFor(dst, now),
      sendAt: (cx, opts) => this.sendAt(cx, opts),
    };
    this.loopback = this.routing.addInterface({ link: opts.loopback, ipv4: '127.0.0.1/8', ipv6: '::1/128' });
  }

  // ---- configuration ------------------------------------------------------------------

  addInterface(cfg: InterfaceConfig): HostInterface {
    return this.routing.addInterface(cfg);
  }

  /** Datagrams for `protocol` are delivered; others draw protocol unreachable (RFC 1122 §3.2.2.1). */
  registerProtocol(protocol: number): void {
    this.protocols.add(protocol);
  }

  lookupRoute(dst: string): RouteEntry | undefined {
    return this.routing.lookup(dst);
  }

  isLocalAddress(addr: string): boolean {
    return this.routing.local.has(addr);
  }

  sourceFor(dst: string): string | undefined {
    return this.routing.sourceFor(dst);
  }

  /** sourceFor with the address's bytes (the interface's Prefix); see IpStack.sourceAddressFor. */
  sourceAddressFor(dst: string, dstBytes?: Uint8Array): IpAddress | undefined {
    return this.routing.sourceAddressFor(dst, dstBytes);
  }

  /** The link MTU toward dst, lowered by what path-MTU discovery learned and still believes at `now`. */
  mtuFor(dst: string, now: number): number {
    const r = this.routing.lookup(dst);
    // RFC 1122 §3.3.3 / RFC 8200 §5: with no route, assume the minimum every path carries.
    if (!r) return cachedAddressBytes(dst)?.length === 4 ? 576 : 1280;
    return this.pathMtu(r, dst, now);
  }

  /** The MTU of the route's link, lowered by what path-MTU discovery still believes for dst. */
  private pathMtu(r: RouteEntry, dst: string, now: number): number {
    const mtu = r.iface.link.mtu;
    const learned = this.pmtu.get(dst, now);
    return learned !== undefined && learned < mtu ? learned : mtu;
  }

  /** The offloads of the link a datagram to dst would leave on (undefined: none, or no route). */
  offloadsFor(dst: string): LinkOffloads | undefined {
    const route = this.routing.lookup(dst);
    const offloads = route?.iface.link.offloads;
    if (route === undefined || !this.softwareGso || (offloads?.tsoMax ?? 0) > 0) return offloads;
    return SOFTWARE_GSO;
  }

  /** The largest super-segment toward `iface`: the link's TSO, or what software GSO cuts. */
  private tsoMax(iface: HostInterface): number {
    const hw = iface.link.offloads?.tsoMax ?? 0;
    return this.softwareGso ? Math.max(hw, GSO_MAX_SIZE) : hw;
  }

  /** When the path MTU learned for dst stops being believed (undefined: none learned). */
  pmtuExpiry(dst: string): number | undefined {
    return this.pmtu.expiresAt(dst);
  }

  get stats(): IpCoreStats {
    return {
      pendingEchoes: this.echoes.size,
      reassemblyDatagrams: this.reassembly.size,
      reassemblyBytes: this.reassembly.bufferedBytes,
      pmtuEntries: this.pmtu.size,
    };
  }

  // ---- time ---------------------------------------------------------------------------

  /** The earliest time something is due: a reassembly deadline or a ping's. */
  nextTimeout(): number | undefined {
    const a = this.reassembly.nextTimeout();
    const b = this.echoes.nextTimeout();
    return a === undefined ? b : b === undefined ? a : Math.min(a, b);
  }

  /** The earliest reassembly deadline alone (a driver that arms one timer per ping needs only this). */
  reassemblyTimeout(): number | undefined {
    return this.reassembly.nextTimeout();
  }

  /** Everything due at `now`: reassemblies given up, pings timed out. */
  handleTimeout(now: number, out: IpAction[]): void {
    this.expireReassembly(now, out);
    for (const e of this.echoes.expire(now)) this.echoTimedOut(e.echo, e.target, e.timeoutMs, out);
  }

  /**
   * Give up the reassemblies whose time ran out at `now` (RFC 791 §3.2, RFC 8200 §4.5) and
   * answer those whose first fragment came with Time Exceeded code 1 (RFC 792: "fragment
   * reassembly time exceeded"; RFC 8200 §4.5 likewise).
   */
  expireReassembly(now: number, out: IpAction[]): void {
    const cx: Cx = { now, out };
    for (const { version, expired: e } of this.reassembly.expire(now)) {
      const layer = version === 4 ? 'ipv4' : 'ipv6';
      if (this.trace.enabled) {
        this.traceEvent(
          cx,
          layer,
          'drop',
          `drop reasm.drop.timeout: reassembly of ${e.key} timed out`,
          undefined,
          'reasm.drop.timeout',
          version === 4 ? 'RFC 792' : 'RFC 8200 §4.5',
        );
      }
      // RFC 792: Time Exceeded code 1 only when fragment zero arrived.
      if (e.header && e.quote) {
        sendIcmpError(
          this.ctx,
          cx,
          version,
          (original) => ({ kind: 'time-exceeded', code: 1, original }),
          offendingDatagram(version, e.header.src, e.header.dst, e.quote),
        );
      }
    }
  }

  // ---- send path ----------------------------------------------------------------------

  /** Route, fragment if it must (RFC 791 §2.3, RFC 8200 §5) and queue a datagram this host originates. */
  send(opts: SendOptions, now: number, out: IpAction[]): SendResult {
    return this.sendAt({ now, out }, opts);
  }

  private sendAt(cx: Cx, opts: SendOptions): SendResult {
    // The sender's bytes when it holds them (types.ts: no layer parses what another
    // formatted); text from elsewhere (a ping target, a test) is parsed through the cache.
    const dstBytes = opts.dstBytes ?? cachedAddressBytes(opts.dst);
    const route = dstBytes === undefined ? undefined : this.routing.lookup(opts.dst, dstBytes);
    if (dstBytes === undefined || route === undefined) {
      this.counters.inc('ip.send.no-route');
      return { ok: false, error: 'no-route' };
    }
    const v4 = dstBytes.length === 4;
    const local = this.routing.local;
    let src = opts.src;
    let srcBytes = opts.srcBytes;
    if (src === undefined) {
      if (local.has(opts.dst)) {
        src = opts.dst;
        srcBytes = dstBytes;
      } else {
        const own = v4 ? route.iface.ipv4 : route.iface.ipv6;
        src = own?.address;
        srcBytes = own?.addressBytes;
      }
    } else {
      srcBytes ??= cachedAddressBytes(src);
      // A source must be ours and of the destination's family (RFC 1122 §3.3.4.2).
      if (!local.has(src) || srcBytes?.length !== dstBytes.length) src = undefined;
    }
    if (src === undefined || srcBytes === undefined) {
      this.counters.inc('ip.send.no-source');
      return { ok: false, error: 'no-source' };
    }
    const mtu = this.pathMtu(route, opts.dst, cx.now);
    // The header's addresses written from these bytes (encodeIpv4Into / encodeIpv6Into).
    const addr: AddressBytes = { srcBytes, dstBytes };
    return v4
      ? this.sendV4(cx, opts, src, addr, route.iface, mtu)
      : this.sendV6(cx, opts, src, addr, route.iface, mtu);
  }

  private sendV4(
    cx: Cx,
    opts: SendOptions,
    src: string,
    addr: AddressBytes,
    iface: HostInterface,
    mtu: number,
  ): SendResult {
    const p: Ipv4Packet = {
      dscp: 0,
      ecn: (opts.ecn ?? 0) & 3,
      identification: this.nextIpId,
      reservedFlag: false,
      dontFragment: opts.dontFragment === true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: opts.ttl ?? this.defaultTtl,
      protocol: opts.protocol,
      src,
      dst: opts.dst,
      options: [],
      payload: opts.payload,
    };
    this.nextIpId = (this.nextIpId + 1) & 0xffff;
    const size = IPV4_MIN_HEADER + opts.payload.length;
    if (opts.gso !== undefined) {
      // TSO: the link cuts the super-segment; what must fit the path is each piece.
      const piece = IPV4_MIN_HEADER + opts.gso.transportHeaderLength + opts.gso.size;
      if (size > 0xffff || piece > mtu) {
        this.counters.inc('ipv4.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      if (size > mtu && size > this.tsoMax(iface)) {
        this.counters.inc('ipv4.send.gso-unsupported');
        return { ok: false, error: 'too-big' };
      }
      this.transmit4(cx, iface, p, addr, opts);
      return { ok: true };
    }
    if (size > 0xffff || (size > mtu && p.dontFragment)) {
      this.counters.inc('ipv4.send.too-big');
      return { ok: false, error: 'too-big', mtu };
    }
    if (size <= mtu) {
      this.transmit4(cx, iface, p, addr, opts);
    } else {
      if (opts.csumOffset !== undefined) completeChecksum(opts.payload, 0, opts.csumOffset);
      // RFC 791 §2.3: a datagram larger than the link allows is fragmented unless DF is set.
      let frags: Ipv4Packet[];
      try {
        frags = fragmentIpv4(p, mtu);
      } catch (e) {
        // A link MTU below 68 (RFC 791's minimum) leaves no room for 8 octets of data.
        if (!(e instanceof RangeError)) throw e;
        this.counters.inc('ipv4.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      this.counters.inc('ipv4.tx.fragments', frags.length);
      for (const f of frags) this.transmit4(cx, iface, f, addr);
    }
    return { ok: true };
  }

  private sendV6(
    cx: Cx,
    opts: SendOptions,
    src: string,
    addr: AddressBytes,
    iface: HostInterface,
    mtu: number,
  ): SendResult {
    const p: Ipv6Packet = {
      trafficClass: (opts.ecn ?? 0) & 3, // RFC 3168 §5: ECN in the low two bits
      flowLabel: 0,
      hopLimit: opts.ttl ?? this.defaultTtl,
      src,
      dst: opts.dst,
      extensionHeaders: [],
      nextHeader: opts.protocol,
      payload: opts.payload,
    };
    const size = IPV6_HEADER_LENGTH + opts.payload.length;
    if (opts.gso !== undefined) {
      // TSO: the link cuts the super-segment; what must fit the path is each piece.
      const piece = IPV6_HEADER_LENGTH + opts.gso.transportHeaderLength + opts.gso.size;
      if (opts.payload.length > 0xffff || piece > mtu) {
        this.counters.inc('ipv6.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      if (size > mtu && size > this.tsoMax(iface)) {
        this.counters.inc('ipv6.send.gso-unsupported');
        return { ok: false, error: 'too-big' };
      }
      this.transmit6(cx, iface, p, addr, opts);
      return { ok: true };
    }
    if (opts.payload.length > 0xffff || (size > mtu && opts.dontFragment === true)) {
      this.counters.inc('ipv6.send.too-big');
      return { ok: false, error: 'too-big', mtu };
    }
    if (size <= mtu) {
      this.transmit6(cx, iface, p, addr, opts);
    } else {
      if (opts.csumOffset !== undefined) completeChecksum(opts.payload, 0, opts.csumOffset);
      // RFC 8200 §5: only the source fragments, with a Fragment header, to the path MTU.
      let frags: Ipv6Packet[];
      try {
        frags = fragmentIpv6(p, mtu, this.nextFragId);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        this.counters.inc('ipv6.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      this.nextFragId = (this.nextFragId + 1) >>> 0;
      this.counters.inc('ipv6.tx.fragments', frags.length);
      for (const f of frags) this.transmit6(cx, iface, f, addr);
    }
    return { ok: true };
  }

  /**
   * Encode and queue one datagram. With header room (SendOptions.headroom) the header is
   * written in front of the payload in the sender's buffer, and that buffer goes to the
   * link: the transport's bytes are not copied here (fragments, having none, are).
   */
  private transmit4(
    cx: Cx,
    iface: HostInterface,
    p: Ipv4Packet,
    addr: AddressBytes,
    opts?: SendOptions,
  ): void {
    let bytes: Uint8Array;
    const payload = p.payload;
    if (opts !== undefined && (opts.headroom ?? 0) >= IPV4_MIN_HEADER && p.options.length === 0) {
      bytes = new Uint8Array(
        payload.buffer,
        payload.byteOffset - IPV4_MIN_HEADER,
        IPV4_MIN_HEADER + payload.length,
      );
      encodeIpv4Into(p, bytes, 0, addr);
    } else {
      bytes = encodeIpv4(p, addr);
    }
    this.counters.inc('ipv4.tx');
    if (this.trace.enabled)
      this.traceEvent(cx, 'ipv4', 'out', summary4(p, bytes.length), fields4(p, bytes.length));
    if (opts?.gso !== undefined && this.softwareGso && bytes.length > (iface.link.offloads?.tsoMax ?? 0)) {
      const gso = opts.gso;
      const n = this.cutSuperSegment(cx, iface, bytes, {
        type: 'tcpv4',
        size: gso.size,
        hdrLen: IPV4_MIN_HEADER + gso.transportHeaderLength,
      });
      // inet_gso_segment gives the pieces id, id+1, ...: the next datagram's follows them.
      if (n > 1) this.nextIpId = (this.nextIpId + n - 1) & 0xffff;
      return;
    }
    const info =
      opts === undefined ? undefined : this.offloadInfo(iface, bytes, IPV4_MIN_HEADER, opts, 'tcpv4');
    cx.out.push(
      info === undefined
        ? { kind: 'transmit', iface, packet: bytes }
        : { kind: 'transmit', iface, packet: bytes, info },
    );
  }

  private transmit6(
    cx: Cx,
    iface: HostInterface,
    p: Ipv6Packet,
    addr: AddressBytes,
    opts?: SendOptions,
  ): void {
    let bytes: Uint8Array;
    const payload = p.payload;
    if (opts !== undefined && (opts.headroom ?? 0) >= IPV6_HEADER_LENGTH && p.extensionHeaders.length === 0) {
      bytes = new Uint8Array(
        payload.buffer,
        payload.byteOffset - IPV6_HEADER_LENGTH,
        IPV6_HEADER_LENGTH + payload.length,
      );
      encodeIpv6Into(p, bytes, 0, addr);
    } else {
      bytes = encodeIpv6(p, addr);
    }
    this.counters.inc('ipv6.tx');
    if (this.trace.enabled)
      this.traceEvent(cx, 'ipv6', 'out', summary6(p, bytes.length), fields6(p, bytes.length));
    if (opts?.gso !== undefined && this.softwareGso && bytes.length > (iface.link.offloads?.tsoMax ?? 0)) {
      const gso = opts.gso;
      this.cutSuperSegment(cx, iface, bytes, {
        type: 'tcpv6',
        size: gso.size,
        hdrLen: IPV6_HEADER_LENGTH + gso.transportHeaderLength,
      });
      return;
    }
    const info =
      opts === undefined ? undefined : this.offloadInfo(iface, bytes, IPV6_HEADER_LENGTH, opts, 'tcpv6');
    cx.out.push(
      info === undefined
        ? { kind: 'transmit', iface, packet: bytes }
        : { kind: 'transmit', iface, packet: bytes, info },
    );
  }

  /**
   * Software GSO: cut a super-segment the link cannot take into packets of `gso.size` data
   * bytes (gso.ts, after Linux's tcp_gso_segment) and queue each for the link, its TCP
   * checksum left partial when the link completes it. Returns how many packets went.
   */
  private cutSuperSegment(cx: Cx, iface: HostInterface, bytes: Uint8Array, gso: GsoSpec): number {
    const layer = gso.type === 'tcpv4' ? 'ipv4' : 'ipv6';
    const partial = iface.link.offloads?.checksum === true;
    let cut: GsoSegments;
    try {
      cut = gsoSegment(bytes, gso, partial ? 'partial' : 'full');
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped(cx, layer, 'ip.drop.gso-malformed', e.message);
      return 0;
    }
    const n = cut.packets.length;
    this.counters.inc('ip.tx.gso-software');
    this.counters.inc('ip.tx.gso-segments', n);
    if (this.trace.enabled) {
      this.traceEvent(
        cx,
        layer,
        'local',
        `gso: ${bytes.length}-byte super-segment cut into ${n} packets of ≤ ${gso.size} data bytes`,
        {
          superSegment: bytes.length,
          segments: n,
          size: gso.size,
          hdrLen: gso.hdrLen,
          csum: partial ? 'partial' : 'full',
        },
        undefined,
        'RFC 9293 §3.1; Linux tcp_gso_segment',
      );
    } else {
      // Every byte is in the cut packets now: a buffer TCP took from wire's pool goes back
      // to it, as TunLink gives back one it has written (a listener might keep it).
      superSegments.give(bytes.buffer);
    }
    const info: PacketInfo | undefined = partial
      ? { csum: { kind: 'partial', start: cut.transportOffset, offset: TCP_GSO_FIELD.checksum } }
      : undefined;
    if (partial) this.counters.inc('ip.tx.csum-partial', n);
    for (const packet of cut.packets) {
      cx.out.push(
        info === undefined ? { kind: 'transmit', iface, packet } : { kind: 'transmit', iface, packet, info },
      );
    }
    return n;
  }

  /**
   * The PacketInfo a datagram leaves with: a partial checksum for a link that completes it
   * (completed here otherwise), a super-segment's cut. Undefined for a plain datagram.
   */
  private offloadInfo(
    iface: HostInterface,
    bytes: Uint8Array,
    headerLength: number,
    opts: SendOptions,
    type: 'tcpv4' | 'tcpv6',
  ): PacketInfo | undefined {
    if (opts.csumOffset === undefined && opts.gso === undefined) return undefined;
    const info: PacketInfo = {};
    if (opts.csumOffset !== undefined) {
      if (iface.link.offloads?.checksum) {
        info.csum = { kind: 'partial', start: headerLength, offset: opts.csumOffset };
        this.counters.inc('ip.tx.csum-partial');
      } else {
        completeChecksum(bytes, headerLength, opts.csumOffset);
        this.counters.inc('ip.tx.csum-completed');
      }
    }
    if (opts.gso !== undefined) {
      info.gso = { type, size: opts.gso.size, hdrLen: headerLength + opts.gso.transportHeaderLength };
      this.counters.inc('ip.tx.gso');
    }
    return info;
  }

  // ---- receive path -------------------------------------------------------------------

  /** One IP packet as it arrived on `iface` (the first real interface by default). */
  receive(
    packet: Uint8Array,
    iface: HostInterface | undefined,
    now: number,
    out: IpAction[],
    info?: PacketInfo,
  ): void {
    const cx: Cx = { now, out };
    const via = iface ?? this.routing.ifaces[1] ?? this.loopback;
    const first = packet[0];
    if (first === undefined) {
      this.dropped(cx, 'ip', 'ip.drop.empty', 'empty packet');
      return;
    }
    const version = first >> 4;
    // What the link says of the transport checksum travels up with the datagram; a
    // coalesced super-segment (GRO) larger than the MTU is taken whole (RFC-less: veth, TUN).
    const csum = info?.csum?.kind;
    if (csum !== undefined) this.counters.inc(`ip.rx.csum-${csum}`);
    if (info?.gso !== undefined) this.counters.inc('ip.rx.gro');
    if (version === 4) this.receive4(cx, packet, via, csum);
    else if (version === 6) this.receive6(cx, packet, via, csum);
    else this.dropped(cx, 'ip', 'ip.drop.version', `IP version ${version}`);
  }

  private receive4(cx: Cx, b: Uint8Array, iface: HostInterface, csum?: 'valid' | 'partial'): void {
    const info: Ipv4DecodeInfo = { headerLength: 0, totalLength: 0, headerChecksum: 0, checksumOk: false };
    let p: Ipv4Packet;
    try {
      p = decodeIpv4(b, undefined, info);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      // RFC 1122 §3.2.1.2: a datagram whose header checksum fails is silently discarded.
      this.dropped(
        cx,
        'ipv4',
        e.field === 'checksum' ? 'ipv4.drop.checksum' : 'ipv4.drop.malformed',
        e.message,
      );
      return;
    }
    this.counters.inc('ipv4.rx');
    if (this.trace.enabled)
      this.traceEvent(cx, 'ipv4', 'in', summary4(p, info.totalLength), fields4(p, info.totalLength));
    const whole = info.totalLength === b.length ? b : view(b, 0, info.totalLength);
    this.process4(cx, p, whole, info.headerLength, iface, csum);
  }

  private process4(
    cx: Cx,
    p: Ipv4Packet,
    b: Uint8Array,
    headerLength: number,
    iface: HostInterface,
    csum?: 'valid' | 'partial',
  ): void {
    const { local, broadcasts } = this.routing;
    // RFC 1122 §3.2.1.3: a broadcast or multicast source is discarded, and so is a
    // loopback source (127/8) arriving on a real interface. (The source's first octet
    // read in place: 224/4 is multicast, RFC 5771.)
    const src0 = b[IPV4.src] as number;
    if ((src0 & 0xf0) === 0xe0 || broadcasts.has(p.src) || (src0 === 127 && iface !== this.loopback)) {
      this.dropped(cx, 'ipv4', 'ipv4.drop.bad-source', `source ${p.src}`);
      return;
    }
    const toUs = local.has(p.dst);
    const dstBytes = toUs ? undefined : view(b, IPV4.dst, IPV4.dst + 4);
    const broadcast = dstBytes !== undefined && (broadcasts.has(p.dst) || isIpv4LimitedBroadcast(dstBytes));
    // 224.0.0.1 all-systems (RFC 1112); other groups are not joined.
    const multicast = !toUs && p.dst === '224.0.0.1';
    if (!toUs && !broadcast && !multicast) {
      // A host does not forward (RFC 1122 §3.3.1.6 is off by default).
      this.dropped(
        cx,
        'ipv4',
        dstBytes !== undefined && isIpv4Multicast(dstBytes) ? 'ipv4.drop.multicast' : 'ipv4.drop.not-for-us',
        p.dst,
      );
      return;
    }
    if (p.moreFragments || p.fragmentOffset !== 0) {
      // RFC 791 §3.2: reassemble before anything else looks at the datagram.
      const done = this.reassembly.add4(p, b, headerLength, cx.now);
      if (done === undefined) return;
      const whole = { ...done.header, moreFragments: false, fragmentOffset: 0, payload: done.payload };
      let full: Uint8Array;
      try {
        full = encodeIpv4(whole);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        this.dropped(cx, 'ipv4', 'reasm.drop.too-long', e.message);
        return;
      }
      if (this.trace.enabled) {
        this.traceEvent(
          cx,
          'ipv4',
          'local',
          `reassembled ${summary4(whole, full.length)}`,
          fields4(whole, full.length),
        );
      }
      this.process4(cx, whole, full, full.length - done.payload.length, iface);
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
      original: view(b, 0, Math.min(b.length, headerLength + QUOTE_V4)),
    };
    if (csum !== undefined) d.csum = csum;
    if (p.protocol === IPPROTO_ICMP) icmp4In(this.ctx, cx, d, broadcast || multicast);
    if (this.protocols.has(p.protocol)) {
      this.counters.inc('ipv4.delivered');
      cx.out.push({ kind: 'deliver', delivery: d });
      return;
    }
    if (p.protocol === IPPROTO_ICMP) return;
    this.dropped(cx, 'ipv4', 'ipv4.drop.unknown-protocol', `protocol ${p.protocol}`);
    // RFC 1122 §3.2.2.1: protocol unreachable for an upper layer nobody speaks.
    if (!broadcast && !multicast) icmpUnreachable(this.ctx, cx, d, 'protocol');
  }

  private receive6(cx: Cx, b: Uint8Array, iface: HostInterface, csum?: 'valid' | 'partial'): void {
    const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
    let p: Ipv6Packet;
    try {
      p = decodeIpv6(b, undefined, info);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped(cx, 'ipv6', 'ipv6.drop.malformed', e.message);
      return;
    }
    const end = IPV6_HEADER_LENGTH + info.payloadLength;
    this.counters.inc('ipv6.rx');
    if (this.trace.enabled) this.traceEvent(cx, 'ipv6', 'in', summary6(p, end), fields6(p, end));
    this.process6(cx, p, end === b.length ? b : view(b, 0, end), info, iface, csum);
  }

  private process6(
    cx: Cx,
    p: Ipv6Packet,
    b: Uint8Array,
    info: Ipv6DecodeInfo,
    iface: HostInterface,
    csum?: 'valid' | 'partial',
  ): void {
    const srcBytes = ipv6BytesAt(b, IPV6.src);
    if (
      isIpv6Multicast(srcBytes) ||
      isUnspecified(srcBytes) ||
      (p.src === '::1' && iface !== this.loopback)
    ) {
      // RFC 4291 §2.7: multicast never a source; '::' only in address configuration we do not run.
      this.dropped(cx, 'ipv6', 'ipv6.drop.bad-source', `source ${p.src}`);
      return;
    }
    const toUs = this.routing.local.has(p.dst);
    const dstBytes = ipv6BytesAt(b, IPV6.dst);
    const multicast = !toUs && isIpv6Multicast(dstBytes);
    if (!toUs) {
      if (!multicast) {
        this.dropped(cx, 'ipv6', 'ipv6.drop.not-for-us', p.dst);
        return;
      }
      // All-nodes (RFC 4291 §2.7.1) is ours; router solicitations (ff02::2), solicited-node
      // and MLD groups from a kernel are dropped quietly: a TUN link has no neighbours.
      if (p.dst !== 'ff02::1' && p.dst !== 'ff01::1') {
        this.counters.inc('ipv6.drop.multicast');
        return;
      }
    }
    const hs = p.extensionHeaders;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i];
      const at = info.extOffsets[i];
      if (h === undefined || at === undefined) break;
      if (h.kind === 'hop-by-hop' || h.kind === 'destination') {
        if (!this.checkOptions6(cx, p, b, at, multicast)) return;
      } else if (h.kind === 'routing') {
        // RFC 8200 §4.4: no Routing type is recognized here (type 0 is deprecated, RFC 5095),
        // so one with Segments Left > 0 is refused, pointing at the Routing Type field.
        if (h.segmentsLeft !== 0) {
          this.dropped(cx, 'ipv6', 'ipv6.drop.routing-header', `routing type ${h.routingType}`);
          if (!multicast) paramProblem6(this.ctx, cx, p, b, ICMPV6_PARAM.header, at + 2);
          return;
        }
      } else if (h.kind === 'fragment') {
        this.fragment6(cx, p, b, h, i, at, iface, multicast);
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
      original: view(b, 0, Math.min(b.length, info.headerLength + QUOTE_V6)),
    };
    if (csum !== undefined) d.csum = csum;
    if (p.nextHeader === IPPROTO_ICMPV6) icmp6In(this.ctx, cx, d, multicast, iface);
    if (this.protocols.has(p.nextHeader)) {
      this.counters.inc('ipv6.delivered');
      cx.out.push({ kind: 'deliver', delivery: d });
      return;
    }
    if (p.nextHeader === IPPROTO_ICMPV6) return;
    if (p.nextHeader === NH_NO_NEXT_HEADER) {
      this.counters.inc('ipv6.no-next-header');
      return;
    }
    this.dropped(cx, 'ipv6', 'ipv6.drop.unknown-next-header', `next header ${p.nextHeader}`);
    // RFC 8200 §4: Parameter Problem code 1 pointing at the unrecognized Next Header.
    if (!multicast) paramProblem6(this.ctx, cx, p, b, ICMPV6_PARAM.nextHeader, info.lastNextHeaderOffset);
  }

  /** RFC 8200 §4.2: the two high bits of an unrecognized option's type say what to do. */
  private checkOptions6(cx: Cx, p: Ipv6Packet, b: Uint8Array, at: number, multicast: boolean): boolean {
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
          this.dropped(cx, 'ipv6', 'ipv6.drop.unknown-option', `option 0x${type.toString(16)}`);
          if (action === 2 || (action === 3 && !multicast))
            paramProblem6(this.ctx, cx, p, b, ICMPV6_PARAM.option, pos, true);
          return false;
        }
      }
      pos += 2 + (b[pos + 1] ?? 0);
    }
    return true;
  }

  private fragment6(
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
      this.dropped(cx, 'ipv6', 'reasm.drop.bad-length', `fragment of ${len} bytes`);
      if (!multicast) paramProblem6(this.ctx, cx, p, b, ICMPV6_PARAM.header, 4);
      return;
    }
    // ... and none may reach past 65535 octets of fragmentable part.
    if (offset + len > 0xffff) {
      this.dropped(cx, 'ipv6', 'reasm.drop.too-long', `fragment ends at ${offset + len}`);
      if (!multicast) paramProblem6(this.ctx, cx, p, b, ICMPV6_PARAM.header, at + 2);
      return;
    }
    // RFC 8200 §4.5 (after RFC 7112): the first fragment must hold the whole header chain up
    // to the upper-layer header; otherwise Parameter Problem code 3 with pointer zero.
    if (offset === 0 && fh.moreFragments && !chainComplete(p.nextHeader, p.payload)) {
      this.dropped(cx, 'ipv6', 'ipv6.drop.incomplete-chain', 'first fragment lacks the upper-layer header');
      if (!multicast) paramProblem6(this.ctx, cx, p, b, 3, 0);
      return;
    }
    const perFragment = p.extensionHeaders.slice(0, index);
    let whole: Ipv6Packet;
    if (offset === 0 && !fh.moreFragments) {
      // RFC 6946: an atomic fragment is processed alone, never mixed with queued fragments.
      this.counters.inc('ipv6.atomic-fragment');
      whole = { ...p, extensionHeaders: perFragment };
    } else {
      const done = this.reassembly.add6(p, b, fh, perFragment, cx.now);
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
      this.dropped(cx, 'ipv6', 'ipv6.drop.malformed', `reassembled: ${e.message}`);
      return;
    }
    if (chain.headers.some((h) => h.kind === 'fragment')) {
      this.dropped(cx, 'ipv6', 'ipv6.drop.malformed', 'nested Fragment header');
      return;
    }
    const rebuilt: Ipv6Packet = {
      ...whole,
      extensionHeaders: [...whole.extensionHeaders, ...chain.headers],
      nextHeader: chain.nextHeader,
      payload: whole.payload.subarray(chain.payloadOffset),
    };
    let full: Uint8Array;
    try {
      full = encodeIpv6(rebuilt);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.dropped(cx, 'ipv6', 'reasm.drop.too-long', e.message);
      return;
    }
    const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
    const again = decodeIpv6(full, undefined, info);
    if (this.trace.enabled) {
      this.traceEvent(
        cx,
        'ipv6',
        'local',
        `reassembled ${summary6(again, full.length)}`,
        fields6(again, full.length),
      );
    }
    this.process6(cx, again, full, info, iface);
  }

  // ---- ICMP errors out ----------------------------------------------------------------

  /** Answer a delivered datagram with an ICMP error: port/protocol unreachable or administratively prohibited. */
  sendUnreachable(d: IpDelivery, reason: 'port' | 'protocol' | 'admin', now: number, out: IpAction[]): void {
    icmpUnreachable(this.ctx, { now, out }, d, reason);
  }

  // ---- ping ---------------------------------------------------------------------------

  /**
   * Send one echo request (RFC 792, RFC 4443 §4.1) and remember it until `deadline`.
   * Its end comes as an `echo` action: from receive (reply or ICMP error), from
   * handleTimeout / expireEcho (timeout), or from cancelEcho's caller.
   */
  startEcho(dst: string, opts: PingOptions, now: number, out: IpAction[]): EchoStart {
    const id = (opts.id ?? this.pingId) & 0xffff;
    const seq = (opts.seq ?? this.nextPingSeq++) & 0xffff;
    // The target is a person's text: parsed once here, and its bytes travel with it.
    let targetBytes: Uint8Array;
    try {
      targetBytes = parseIp(dst);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      return { ok: false, id, seq, message: `not an address: ${dst}` };
    }
    const target = formatIp(targetBytes);
    const version: IpVersion = targetBytes.length === 4 ? 4 : 6;
    const data = echoData(opts.size ?? 56);
    const m: IcmpMessage = { kind: 'echo-request', code: 0, identifier: id, sequence: seq, data };
    let payload: Uint8Array | undefined;
    let own: IpAddress | undefined;
    if (version === 4) payload = encodeIcmpv4(m);
    else {
      // The ICMPv6 checksum covers the pseudo-header (RFC 4443 §2.3): the source must be known now.
      if (opts.src === undefined) own = this.routing.sourceAddressFor(target, targetBytes);
      const src = opts.src ?? own?.addressBytes;
      if (src !== undefined) payload = encodeIcmpv6(m, src, targetBytes);
    }
    const timeoutMs = opts.timeoutMs ?? 1000;
    // Remembered before anything is sent: an earlier request it supersedes ends either way.
    const { entry, superseded } = this.echoes.add(version, target, id, seq, data, now, timeoutMs);
    const sup = superseded === undefined ? {} : { superseded: superseded.echo };
    if (payload === undefined) {
      this.echoes.remove(entry.echo);
      return {
        ok: false,
        id,
        seq,
        message: `no route to ${target}`,
        sendResult: { ok: false, error: 'no-route' },
        ...sup,
      };
    }
    const r = this.send(
      {
        src: opts.src ?? own?.address,
        srcBytes: own?.addressBytes,
        dst: target,
        dstBytes: targetBytes,
        protocol: version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
        payload,
        ttl: opts.ttl,
        dontFragment: opts.dontFragment,
      },
      now,
      out,
    );
    if (!r.ok) {
      this.echoes.remove(entry.echo);
      return { ok: false, id, seq, message: `send to ${target} failed: ${r.error}`, sendResult: r, ...sup };
    }
    return { ok: true, echo: entry.echo, id, seq, deadline: entry.deadline, ...sup };
  }

  /** Forget a pending echo request (the caller gave up on it). False if it had already ended. */
  cancelEcho(echo: number): boolean {
    return this.echoes.remove(echo) !== undefined;
  }

  /** The driver's timer for one echo request fired: it times out if still pending. */
  expireEcho(echo: number, out: IpAction[]): void {
    const e = this.echoes.remove(echo);
    if (e !== undefined) this.echoTimedOut(e.echo, e.target, e.timeoutMs, out);
  }

  /** End every pending echo request (the host is closing). */
  cancelAllEchoes(out: IpAction[]): void {
    for (const e of this.echoes.clear()) {
      out.push({ kind: 'echo', echo: e.echo, outcome: { kind: 'cancelled', message: 'host closed' } });
    }
  }

  private echoTimedOut(echo: number, target: string, timeoutMs: number, out: IpAction[]): void {
    const message = `no echo reply from ${target} within ${timeoutMs} ms`;
    out.push({ kind: 'echo', echo, outcome: { kind: 'timeout', message } });
  }

  // ---- tracing ------------------------------------------------------------------------

  private dropped(cx: Cx, layer: string, counter: string, detail: string, rfc?: string): void {
    dropped(this.ctx, cx, layer, counter, detail, rfc);
  }

  private traceEvent(
    cx: Cx,
    layer: string,
    dir: TraceEvent['dir'],
    summary: string,
    fields?: Record<string, unknown>,
    reason?: string,
    rfc?: string,
  ): void {
    traceEvent(this.ctx, cx, layer, dir, summary, fields, reason, rfc);
  }
}

/**
 * Bytes [start, end) of `b` as a new view. The same as subarray, which V8 makes slower:
 * it looks up the species constructor each time, and this runs several times a packet.
 */
function view(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, end - start);
}
