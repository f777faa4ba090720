/**
 * The send path of datagrams this host originates: choosing the source (RFC 1122 §3.3.4.2),
 * the header written in place in the sender's buffer when it left room, fragmentation to the
 * path MTU (RFC 791 §2.3 and §3.2 for IPv4; RFC 8200 §4.5 and §5 for IPv6, where only the
 * source fragments), a transport checksum left partial for a link that completes it, and the
 * hand-off of TCP super-segments: to the link when it has TSO, or cut here by software GSO
 * (gso.ts, after Linux's tcp_gso_segment) when it has not.
 *
 * `IpSender` holds what this path alone changes: the next IPv4 Identification and the next
 * IPv6 Fragment Identification. IpCore owns one and calls `send` for every datagram.
 */
import type { LinkOffloads, PacketInfo } from '@stepwire/link';
import { ParseError, superSegments } from '@stepwire/wire';
import { cachedAddressBytes } from '../address.ts';
import { completeChecksum } from '../checksum.ts';
import { fragmentIpv4, fragmentIpv6 } from '../fragment.ts';
import { GSO_MAX_SIZE, type GsoSegments, type GsoSpec, gsoSegment, TCP_GSO_FIELD } from '../gso.ts';
import { encodeIpv4, IPV4_MIN_HEADER, type Ipv4Packet, writeIpv4HeaderBefore } from '../ipv4.ts';
import { encodeIpv6, encodeIpv6Into, IPV6_HEADER_LENGTH, type Ipv6Packet } from '../ipv6.ts';
import type { SendOptions, SendResult } from '../types.ts';
import { type CoreContext, type Cx, dropped, traceEvent } from './context.ts';
import type { HostInterface } from './routing.ts';
import { fields4, fields6, summary4, summary6 } from './trace.ts';

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

/**
 * The result of every send that went: one frozen object rather than a fresh { ok: true }
 * per datagram (a caller reads it, never changes it).
 */
const SENT: SendResult = Object.freeze({ ok: true });

/** What the send path reads of the host: its name, counters, tracing, routes and path MTUs. */
export type SendContext = Pick<CoreContext, 'name' | 'counters' | 'perPacket' | 'trace' | 'routing' | 'pmtu'>;

export class IpSender {
  /** IPv4 Identification of the next datagram (RFC 791 §3.2, RFC 6864). */
  private nextIpId: number;
  /** IPv6 Fragment header Identification of the next fragmented datagram (RFC 8200 §4.5). */
  private nextFragId: number;

  constructor(
    private readonly ctx: SendContext,
    /** TTL / Hop Limit when the sender gives none. */
    readonly defaultTtl: number,
    /** Cut TCP super-segments here for links without TSO (IpTuning.softwareGso). */
    private readonly softwareGso: boolean,
    firstIpId: number,
    firstFragId: number,
  ) {
    this.nextIpId = firstIpId;
    this.nextFragId = firstFragId;
  }

  /** The offloads of the link a datagram to dst would leave on (undefined: none, or no route). */
  offloadsFor(dst: string): LinkOffloads | undefined {
    const route = this.ctx.routing.lookup(dst);
    const offloads = route?.iface.link.offloads;
    if (route === undefined || !this.softwareGso || (offloads?.tsoMax ?? 0) > 0) return offloads;
    return SOFTWARE_GSO;
  }

  /** The largest super-segment toward `iface`: the link's TSO, or what software GSO cuts. */
  private tsoMax(iface: HostInterface): number {
    const hw = iface.link.offloads?.tsoMax ?? 0;
    return this.softwareGso ? Math.max(hw, GSO_MAX_SIZE) : hw;
  }

  /** Route, fragment if it must (RFC 791 §2.3, RFC 8200 §5) and queue a datagram this host originates. */
  send(cx: Cx, opts: SendOptions): SendResult {
    const { routing, counters } = this.ctx;
    // The sender's bytes when it holds them (types.ts: no layer parses what another
    // formatted); text from elsewhere (a ping target, a test) is parsed through the cache.
    const dstBytes = opts.dstBytes ?? cachedAddressBytes(opts.dst);
    const route = dstBytes === undefined ? undefined : routing.lookup(opts.dst, dstBytes);
    if (dstBytes === undefined || route === undefined) {
      counters.inc('ip.send.no-route');
      return { ok: false, error: 'no-route' };
    }
    const v4 = dstBytes.length === 4;
    const local = routing.local;
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
      counters.inc('ip.send.no-source');
      return { ok: false, error: 'no-source' };
    }
    const mtu = this.ctx.pmtu.mtuVia(route.iface.link.mtu, opts.dst, cx.now);
    // The header's addresses are written from these bytes (writeIpv4HeaderBefore,
    // encodeIpv4Into / encodeIpv6Into).
    return v4
      ? this.sendV4(cx, opts, src, srcBytes, dstBytes, route.iface, mtu)
      : this.sendV6(cx, opts, src, { srcBytes, dstBytes }, route.iface, mtu);
  }

  /** The datagram sendV4 sends, as a value: for fragmenting, for the ladder, without header room. */
  private packet4(opts: SendOptions, src: string, identification: number): Ipv4Packet {
    return {
      dscp: 0,
      ecn: (opts.ecn ?? 0) & 3,
      identification,
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
  }

  private sendV4(
    cx: Cx,
    opts: SendOptions,
    src: string,
    srcBytes: Uint8Array,
    dstBytes: Uint8Array,
    iface: HostInterface,
    mtu: number,
  ): SendResult {
    const identification = this.nextIpId;
    this.nextIpId = (this.nextIpId + 1) & 0xffff;
    const size = IPV4_MIN_HEADER + opts.payload.length;
    if (opts.gso !== undefined) {
      // TSO: the link cuts the super-segment; what must fit the path is each piece.
      const piece = IPV4_MIN_HEADER + opts.gso.transportHeaderLength + opts.gso.size;
      if (size > 0xffff || piece > mtu) {
        this.ctx.counters.inc('ipv4.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      if (size > mtu && size > this.tsoMax(iface)) {
        this.ctx.counters.inc('ipv4.send.gso-unsupported');
        return { ok: false, error: 'too-big' };
      }
      this.transmit4(cx, iface, opts, src, srcBytes, dstBytes, identification);
      return SENT;
    }
    if (size > 0xffff || (size > mtu && opts.dontFragment === true)) {
      this.ctx.counters.inc('ipv4.send.too-big');
      return { ok: false, error: 'too-big', mtu };
    }
    if (size <= mtu) {
      this.transmit4(cx, iface, opts, src, srcBytes, dstBytes, identification);
    } else {
      if (opts.csumOffset !== undefined) completeChecksum(opts.payload, 0, opts.csumOffset);
      // RFC 791 §2.3: a datagram larger than the link allows is fragmented unless DF is set.
      let frags: Ipv4Packet[];
      try {
        frags = fragmentIpv4(this.packet4(opts, src, identification), mtu);
      } catch (e) {
        // A link MTU below 68 (RFC 791's minimum) leaves no room for 8 octets of data.
        if (!(e instanceof RangeError)) throw e;
        this.ctx.counters.inc('ipv4.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      this.ctx.counters.inc('ipv4.tx.fragments', frags.length);
      const addr: AddressBytes = { srcBytes, dstBytes };
      for (const f of frags) this.transmitFragment4(cx, iface, f, addr);
    }
    return SENT;
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
        this.ctx.counters.inc('ipv6.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      if (size > mtu && size > this.tsoMax(iface)) {
        this.ctx.counters.inc('ipv6.send.gso-unsupported');
        return { ok: false, error: 'too-big' };
      }
      this.transmit6(cx, iface, p, addr, opts);
      return SENT;
    }
    if (opts.payload.length > 0xffff || (size > mtu && opts.dontFragment === true)) {
      this.ctx.counters.inc('ipv6.send.too-big');
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
        this.ctx.counters.inc('ipv6.send.too-big');
        return { ok: false, error: 'too-big', mtu };
      }
      this.nextFragId = (this.nextFragId + 1) >>> 0;
      this.ctx.counters.inc('ipv6.tx.fragments', frags.length);
      for (const f of frags) this.transmit6(cx, iface, f, addr);
    }
    return SENT;
  }

  /**
   * Encode and queue one datagram. With header room (SendOptions.headroom) the header is
   * written in front of the payload in the sender's buffer, and that buffer goes to the
   * link: the transport's bytes are not copied here (fragments, having none, are).
   */
  private transmit4(
    cx: Cx,
    iface: HostInterface,
    opts: SendOptions,
    src: string,
    srcBytes: Uint8Array,
    dstBytes: Uint8Array,
    identification: number,
  ): void {
    let bytes: Uint8Array;
    const payload = opts.payload;
    // The packet as a value only where it is read: encodeIpv4 and the ladder. With header
    // room the header's fields go straight in front of the payload.
    let p: Ipv4Packet | undefined;
    if ((opts.headroom ?? 0) >= IPV4_MIN_HEADER) {
      bytes = new Uint8Array(
        payload.buffer,
        payload.byteOffset - IPV4_MIN_HEADER,
        IPV4_MIN_HEADER + payload.length,
      );
      writeIpv4HeaderBefore(
        bytes,
        0,
        payload.length,
        opts.ecn ?? 0,
        identification,
        opts.dontFragment === true,
        opts.ttl ?? this.defaultTtl,
        opts.protocol,
        srcBytes,
        dstBytes,
      );
    } else {
      p = this.packet4(opts, src, identification);
      bytes = encodeIpv4(p, { srcBytes, dstBytes });
    }
    this.ctx.perPacket.ipv4Tx();
    if (this.ctx.trace.enabled) {
      p ??= this.packet4(opts, src, identification);
      traceEvent(this.ctx, cx, 'ipv4', 'out', summary4(p, bytes.length), fields4(p, bytes.length));
    }
    const n = this.toLink(cx, iface, bytes, IPV4_MIN_HEADER, 'tcpv4', opts);
    // inet_gso_segment gives the pieces id, id+1, ...: the next datagram's follows them.
    if (n > 1) this.nextIpId = (this.nextIpId + n - 1) & 0xffff;
  }

  /** Encode and queue one fragment (fragmentIpv4's): it has no header room, so it is copied. */
  private transmitFragment4(cx: Cx, iface: HostInterface, p: Ipv4Packet, addr: AddressBytes): void {
    const bytes = encodeIpv4(p, addr);
    this.ctx.perPacket.ipv4Tx();
    if (this.ctx.trace.enabled)
      traceEvent(this.ctx, cx, 'ipv4', 'out', summary4(p, bytes.length), fields4(p, bytes.length));
    this.toLink(cx, iface, bytes, IPV4_MIN_HEADER, 'tcpv4', undefined);
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
    this.ctx.perPacket.ipv6Tx();
    if (this.ctx.trace.enabled)
      traceEvent(this.ctx, cx, 'ipv6', 'out', summary6(p, bytes.length), fields6(p, bytes.length));
    // RFC 8200 has no Identification outside the Fragment header: nothing to advance here.
    this.toLink(cx, iface, bytes, IPV6_HEADER_LENGTH, 'tcpv6', opts);
  }

  /**
   * Queue an encoded datagram for the link: a super-segment the link cannot take is cut
   * here (software GSO); anything else goes whole, with the PacketInfo its offloads need.
   * Returns how many packets went (0 when a cut failed).
   */
  private toLink(
    cx: Cx,
    iface: HostInterface,
    bytes: Uint8Array,
    headerLength: number,
    type: 'tcpv4' | 'tcpv6',
    opts: SendOptions | undefined,
  ): number {
    const gso = opts?.gso;
    if (gso !== undefined && this.softwareGso && bytes.length > (iface.link.offloads?.tsoMax ?? 0)) {
      return this.cutSuperSegment(cx, iface, bytes, {
        type,
        size: gso.size,
        hdrLen: headerLength + gso.transportHeaderLength,
      });
    }
    const info = opts === undefined ? undefined : this.offloadInfo(iface, bytes, headerLength, opts, type);
    cx.out.push(
      info === undefined
        ? { kind: 'transmit', iface, packet: bytes }
        : { kind: 'transmit', iface, packet: bytes, info },
    );
    return 1;
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
      dropped(this.ctx, cx, layer, 'ip.drop.gso-malformed', e.message);
      return 0;
    }
    const n = cut.packets.length;
    this.ctx.counters.inc('ip.tx.gso-software');
    this.ctx.counters.inc('ip.tx.gso-segments', n);
    if (this.ctx.trace.enabled) {
      traceEvent(
        this.ctx,
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
    if (partial) this.ctx.counters.inc('ip.tx.csum-partial', n);
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
        this.ctx.counters.inc('ip.tx.csum-partial');
      } else {
        completeChecksum(bytes, headerLength, opts.csumOffset);
        this.ctx.counters.inc('ip.tx.csum-completed');
      }
    }
    if (opts.gso !== undefined) {
      info.gso = { type, size: opts.gso.size, hdrLen: headerLength + opts.gso.transportHeaderLength };
      this.ctx.counters.inc('ip.tx.gso');
    }
    return info;
  }
}
