import type { Link } from '@stepwire/link';
import {
  type Clock,
  Counters,
  countDrop,
  ParseError,
  Prng,
  type Timer,
  TimerGroup,
  TraceBus,
  type TraceEvent,
} from '@stepwire/wire';
import {
  cachedAddressBytes,
  canonicalIp,
  ipv4BroadcastOf,
  isIpv4LimitedBroadcast,
  isIpv4Multicast,
  isIpv6Multicast,
  isUnspecified,
  type Prefix,
  parsePrefix,
  prefixContains,
} from './address.ts';
import { DEFAULT_REASSEMBLY_LIMITS, fragmentIpv4, fragmentIpv6, Reassembler } from './fragment.ts';
import {
  decodeIcmpv4,
  decodeIcmpv6,
  describeIcmp,
  encodeIcmpv4,
  encodeIcmpv6,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_UNREACH,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PARAM,
  ICMPV6_UNREACH,
  type IcmpMessage,
  isIcmpv4ErrorType,
  isIcmpv6ErrorType,
} from './icmp.ts';
import { decodeIpv4, encodeIpv4, IPV4_MIN_HEADER, type Ipv4DecodeInfo, type Ipv4Packet } from './ipv4.ts';
import {
  decodeIpv6,
  decodeIpv6ExtensionChain,
  encodeIpv6,
  IPV6_HEADER_LENGTH,
  type Ipv6DecodeInfo,
  type Ipv6ExtensionHeader,
  type Ipv6Packet,
  NH_NO_NEXT_HEADER,
} from './ipv6.ts';
import {
  type IcmpErrorReport,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type IpDelivery,
  type IpProtocolHandler,
  type IpStack,
  type IpVersion,
  type SendOptions,
  type SendResult,
} from './types.ts';

export interface HostOptions {
  name: string;
  clock: Clock;
  trace?: TraceBus;
  prng?: Prng;
  counters?: Counters;
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
}

export interface InterfaceConfig {
  link: Link;
  /** 'a.b.c.d/len' */
  ipv4?: string;
  /** 'x::y/len' */
  ipv6?: string;
}

export interface HostInterface {
  readonly index: number;
  readonly link: Link;
  /** Interface address and its prefix. */
  readonly ipv4?: Prefix;
  readonly ipv6?: Prefix;
  /** Directed broadcast of the IPv4 prefix (RFC 919), if any. */
  readonly ipv4Broadcast?: string;
}

export interface RouteEntry {
  prefix: Prefix;
  iface: HostInterface;
  gateway?: string;
  /** Added with an interface address (a connected route). */
  connected: boolean;
}

export interface PingOptions {
  /** ICMP Identifier; a per-host value by default. */
  id?: number;
  /** ICMP Sequence Number; a per-host counter by default. */
  seq?: number;
  /** Bytes of echo data after the 8-byte ICMP header (like ping -s; default 56). */
  size?: number;
  /** Default 1000 ms. */
  timeoutMs?: number;
  ttl?: number;
  dontFragment?: boolean;
  src?: string;
}

export interface PingResult {
  /** Milliseconds on the host's clock from request to reply. */
  rtt: number;
  /** TTL / Hop Limit of the reply as received. */
  ttl: number;
  /** ICMP bytes of the reply (header + data), as ping prints them. */
  bytes: number;
  from: string;
  id: number;
  seq: number;
}

export class PingError extends Error {
  override readonly name = 'PingError';
  constructor(
    readonly reason: 'timeout' | 'icmp-error' | 'send-failed' | 'cancelled',
    message: string,
    readonly report?: IcmpErrorReport,
    readonly sendResult?: SendResult,
  ) {
    super(message);
  }
}

export interface EchoHandle {
  readonly id: number;
  readonly seq: number;
  cancel(): void;
}

interface PendingPing {
  sentAt: number;
  id: number;
  seq: number;
  data: Uint8Array;
  timer: Timer;
  done: (err: PingError | undefined, r?: PingResult) => void;
}

const EMPTY = new Uint8Array(0);
/** RFC 1812 §4.3.2.3: quote as much as fits in a 576-byte ICMP datagram. */
const QUOTE_V4 = 576 - IPV4_MIN_HEADER - 8;
/** RFC 4443 §2.4(c): as much as fits without exceeding the minimum IPv6 MTU. */
const QUOTE_V6 = 1280 - IPV6_HEADER_LENGTH - 8;
/** RFC 1191 §7 plateau table, for frag-needed messages from routers that leave Next-Hop MTU zero. */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

const PROTO_NAMES: Record<number, string> = { [IPPROTO_TCP]: 'TCP', [IPPROTO_UDP]: 'UDP' };

class LoopbackLink implements Link {
  readonly name = 'lo';
  readonly mtu = 65535;
  readonly counters = new Counters();
  private handler: ((p: Uint8Array) => void) | undefined;
  constructor(private readonly clock: Clock) {}
  send(packet: Uint8Array): void {
    this.counters.inc('tx');
    // Delivered from a timer, never re-entrantly from inside send().
    this.clock.setTimer(this.clock.now(), () => {
      this.counters.inc('rx');
      this.handler?.(packet);
    });
  }
  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }
  close(): void {
    this.handler = undefined;
  }
}

/**
 * An IPv4/IPv6 end host (RFC 1122 §3, RFC 8200, RFC 4443): interfaces over Links, a
 * longest-prefix-match routing table, fragmentation and reassembly, protocol dispatch,
 * an echo responder and ping client, ICMP error generation and path-MTU memory.
 *
 * It does not forward: a datagram for another address is counted and dropped.
 * Counters are named '<layer>.<what>' and every drop is '<layer>.drop.<reason>'.
 */
export interface HostStats {
  timersArmed: number;
  pendingPings: number;
  reassemblyDatagrams: number;
  reassemblyBytes: number;
  pmtuEntries: number;
}

const MAX_PMTU_ENTRIES = 4096;

export class Host implements IpStack {
  readonly name: string;
  readonly clock: Clock;
  readonly trace: TraceBus;
  readonly prng: Prng;
  readonly counters: Counters;
  readonly defaultTtl: number;

  private readonly ifaces: HostInterface[] = [];
  private readonly routeTable: RouteEntry[] = [];
  private readonly routeCache = new Map<string, RouteEntry | null>();
  private readonly local = new Set<string>();
  private readonly broadcasts = new Set<string>(['255.255.255.255']);
  private readonly handlers = new Map<number, IpProtocolHandler>();
  private readonly pmtu = new Map<string, { mtu: number; expires: number }>();
  private readonly reasm4: Reassembler<Ipv4Packet>;
  private readonly reasm6: Reassembler<Ipv6Packet>;
  /** The host's own timers (reassembly, pings), counted for `stats`. */
  private readonly timers: TimerGroup;
  private reasmTimer: Timer | undefined;
  private reasmTimerAt = Number.POSITIVE_INFINITY;
  private readonly pings = new Map<string, PendingPing>();
  private readonly loopback: HostInterface;
  private nextIpId: number;
  private nextFragId: number;
  private readonly pingId: number;
  private nextPingSeq = 1;
  private readonly icmpRate: number;
  private readonly icmpBurst: number;
  private icmpTokens: number;
  private icmpTokensAt: number;
  private readonly pmtuExpiryMs: number;

  constructor(opts: HostOptions) {
    this.name = opts.name;
    this.clock = opts.clock;
    this.timers = new TimerGroup(this.clock);
    this.trace = opts.trace ?? new TraceBus();
    this.prng = opts.prng ?? new Prng(0x1a2b3c4d);
    this.counters = opts.counters ?? new Counters();
    this.defaultTtl = opts.defaultTtl ?? 64;
    const limits = {
      maxFragmentsPerSource:
        opts.maxReassemblyFragmentsPerSource ?? DEFAULT_REASSEMBLY_LIMITS.maxFragmentsPerSource,
      maxBytesPerSource: opts.maxReassemblyBytesPerSource ?? DEFAULT_REASSEMBLY_LIMITS.maxBytesPerSource,
      maxDatagramsPerSource:
        opts.maxReassemblyDatagramsPerSource ?? DEFAULT_REASSEMBLY_LIMITS.maxDatagramsPerSource,
      maxBytesTotal: opts.maxReassemblyBytesTotal ?? DEFAULT_REASSEMBLY_LIMITS.maxBytesTotal,
    };
    this.reasm4 = new Reassembler(
      { ...limits, timeoutMs: opts.reassemblyTimeoutV4Ms ?? 30_000 },
      this.counters,
    );
    this.reasm6 = new Reassembler(
      { ...limits, timeoutMs: opts.reassemblyTimeoutV6Ms ?? 60_000 },
      this.counters,
    );
    this.icmpRate = opts.icmpErrorsPerSecond ?? 50;
    this.icmpBurst = opts.icmpErrorBurst ?? 10;
    this.icmpTokens = this.icmpBurst;
    this.icmpTokensAt = this.clock.now();
    this.pmtuExpiryMs = opts.pmtuExpiryMs ?? 600_000;
    this.nextIpId = this.prng.u32() & 0xffff;
    this.nextFragId = this.prng.u32();
    this.pingId = this.prng.u32() & 0xffff;
    this.loopback = this.addInterface({
      link: new LoopbackLink(this.clock),
      ipv4: '127.0.0.1/8',
      ipv6: '::1/128',
    });
  }

  // ---- configuration ------------------------------------------------------------------

  /** Attach a link with optional addresses; connected routes for their prefixes are added. */
  addInterface(cfg: InterfaceConfig): HostInterface {
    const ipv4 = cfg.ipv4 === undefined ? undefined : parsePrefix(cfg.ipv4);
    const ipv6 = cfg.ipv6 === undefined ? undefined : parsePrefix(cfg.ipv6);
    if (ipv4 && ipv4.version !== 4) throw new RangeError(`not an IPv4 prefix: ${cfg.ipv4}`);
    if (ipv6 && ipv6.version !== 6) throw new RangeError(`not an IPv6 prefix: ${cfg.ipv6}`);
    const iface: HostInterface = {
      index: this.ifaces.length,
      link: cfg.link,
      ipv4,
      ipv6,
      ipv4Broadcast: ipv4 ? ipv4BroadcastOf(ipv4) : undefined,
    };
    this.ifaces.push(iface);
    if (ipv4) {
      this.local.add(ipv4.address);
      if (iface.ipv4Broadcast) this.broadcasts.add(iface.ipv4Broadcast);
      this.routeTable.push({ prefix: ipv4, iface, connected: true });
    }
    if (ipv6) {
      this.local.add(ipv6.address);
      this.routeTable.push({ prefix: ipv6, iface, connected: true });
    }
    this.routeCache.clear();
    cfg.link.onPacket((packet) => this.receive(packet, iface));
    return iface;
  }

  get interfaces(): readonly HostInterface[] {
    return this.ifaces;
  }

  get routes(): readonly RouteEntry[] {
    return this.routeTable;
  }

  /**
   * Add a route: 'prefix/len' via an interface (or its link name), optionally naming a
   * gateway. '0.0.0.0/0' and '::/0' are default routes. Links carry raw IP packets, so the
   * gateway is kept for display only: there is no link-layer next hop to resolve.
   */
  addRoute(prefix: string, iface: HostInterface | string, gateway?: string): RouteEntry {
    const p = parsePrefix(prefix);
    const i = typeof iface === 'string' ? this.ifaces.find((x) => x.link.name === iface) : iface;
    if (!i) throw new RangeError(`no interface ${String(iface)}`);
    const r: RouteEntry = {
      prefix: p,
      iface: i,
      gateway: gateway === undefined ? undefined : canonicalIp(gateway),
      connected: false,
    };
    this.routeTable.push(r);
    this.routeCache.clear();
    return r;
  }

  removeRoute(prefix: string): boolean {
    const text = parsePrefix(prefix).text;
    const i = this.routeTable.findIndex((r) => r.prefix.text === text && !r.connected);
    if (i < 0) return false;
    this.routeTable.splice(i, 1);
    this.routeCache.clear();
    return true;
  }

  registerProtocol(protocol: number, handler: IpProtocolHandler): void {
    this.handlers.set(protocol, handler);
  }

  /** Longest-prefix match (RFC 1812 §5.2.4.3); local addresses route over loopback. */
  lookupRoute(dst: string): RouteEntry | undefined {
    const hit = this.routeCache.get(dst);
    if (hit !== undefined) return hit ?? undefined;
    const b = cachedAddressBytes(dst);
    let best: RouteEntry | undefined;
    if (b !== undefined) {
      if (this.local.has(dst)) {
        const v4 = b.length === 4;
        best = this.routeTable.find((r) => r.iface === this.loopback && r.prefix.version === (v4 ? 4 : 6));
      } else {
        for (const r of this.routeTable) {
          if (prefixContains(r.prefix, b) && (best === undefined || r.prefix.length > best.prefix.length))
            best = r;
        }
        // A group or limited-broadcast address no route names goes out the first interface
        // of its family (a host with one link needs no multicast routes).
        if (best === undefined && (isIpv6Multicast(b) || isIpv4Multicast(b) || isIpv4LimitedBroadcast(b))) {
          const v4 = b.length === 4;
          const iface = this.ifaces.find((i) => i !== this.loopback && (v4 ? i.ipv4 : i.ipv6) !== undefined);
          const prefix = iface && (v4 ? iface.ipv4 : iface.ipv6);
          if (iface && prefix) best = { prefix, iface, connected: true };
        }
      }
    }
    if (this.routeCache.size > 4096) this.routeCache.clear();
    this.routeCache.set(dst, best ?? null);
    return best;
  }

  isLocalAddress(addr: string): boolean {
    return this.local.has(addr);
  }

  sourceFor(dst: string): string | undefined {
    if (this.local.has(dst)) return dst;
    const r = this.lookupRoute(dst);
    if (!r) return undefined;
    return (r.prefix.version === 4 ? r.iface.ipv4 : r.iface.ipv6)?.address;
  }

  mtuFor(dst: string): number {
    const r = this.lookupRoute(dst);
    const b = cachedAddressBytes(dst);
    const v4 = b?.length === 4;
    if (!r) return v4 ? 576 : 1280;
    let mtu = r.iface.link.mtu;
    const cached = this.pmtu.get(dst);
    if (cached !== undefined) {
      if (cached.expires <= this.clock.now()) this.pmtu.delete(dst);
      else if (cached.mtu < mtu) mtu = cached.mtu;
    }
    return mtu;
  }

  /** Cancel timers and pending pings; detach nothing else (links belong to the caller). */
  close(): void {
    this.reasmTimer?.cancel();
    this.reasmTimer = undefined;
    for (const p of [...this.pings.values()]) {
      p.timer.cancel();
      p.done(new PingError('cancelled', 'host closed'));
    }
    this.pings.clear();
  }

  // ---- send path ----------------------------------------------------------------------

  send(opts: SendOptions): SendResult {
    const dstBytes = cachedAddressBytes(opts.dst);
    const route = dstBytes === undefined ? undefined : this.lookupRoute(opts.dst);
    if (dstBytes === undefined || route === undefined) {
      this.counters.inc('ip.send.no-route');
      return { ok: false, error: 'no-route' };
    }
    const v4 = dstBytes.length === 4;
    let src = opts.src;
    if (src === undefined) {
      src = (v4 ? route.iface.ipv4 : route.iface.ipv6)?.address;
      if (this.local.has(opts.dst)) src = opts.dst;
    } else if (!this.local.has(src) || (cachedAddressBytes(src)!.length === 4) !== v4) {
      src = undefined;
    }
    if (src === undefined) {
      this.counters.inc('ip.send.no-source');
      return { ok: false, error: 'no-source' };
    }
    const mtu = this.mtuFor(opts.dst);
    return v4 ? this.sendV4(opts, src, route.iface, mtu) : this.sendV6(opts, src, route.iface, mtu);
  }

  private sendV4(opts: SendOptions, src: string, iface: HostInterface, mtu: number): SendResult {
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
    if (size > 0xffff || (size > mtu && p.dontFragment)) {
      this.counters.inc('ipv4.send.too-big');
      return { ok: false, error: 'too-big', mtu };
    }
    if (size <= mtu) {
      this.transmit4(iface, p);
    } else {
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
      for (const f of frags) this.transmit4(iface, f);
    }
    return { ok: true };
  }

  private sendV6(opts: SendOptions, src: string, iface: HostInterface, mtu: number): SendResult {
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
    if (opts.payload.length > 0xffff || (size > mtu && opts.dontFragment === true)) {
      this.counters.inc('ipv6.send.too-big');
      return { ok: false, error: 'too-big', mtu };
    }
    if (size <= mtu) {
      this.transmit6(iface, p);
    } else {
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
      for (const f of frags) this.transmit6(iface, f);
    }
    return { ok: true };
  }

  private transmit4(iface: HostInterface, p: Ipv4Packet): void {
    const bytes = encodeIpv4(p);
    this.counters.inc('ipv4.tx');
    if (this.trace.enabled) this.emit('ipv4', 'out', summary4(p, bytes.length), fields4(p, bytes.length));
    iface.link.send(bytes);
  }

  private transmit6(iface: HostInterface, p: Ipv6Packet): void {
    const bytes = encodeIpv6(p);
    this.counters.inc('ipv6.tx');
    if (this.trace.enabled) this.emit('ipv6', 'out', summary6(p, bytes.length), fields6(p, bytes.length));
    iface.link.send(bytes);
  }

  // ---- receive path -------------------------------------------------------------------

  /** Hand the host one IP packet as it arrived on `iface` (the first real interface by default). */
  receive(packet: Uint8Array, iface?: HostInterface): void {
    const via = iface ?? this.ifaces[1] ?? this.loopback;
    if (packet.length === 0) {
      this.dropped('ip', 'ip.drop.empty', 'empty packet');
      return;
    }
    const version = packet[0]! >> 4;
    if (version === 4) this.receive4(packet, via);
    else if (version === 6) this.receive6(packet, via);
    else this.dropped('ip', 'ip.drop.version', `IP version ${version}`);
  }

  private receive4(b: Uint8Array, iface: HostInterface): void {
    const info: Ipv4DecodeInfo = { headerLength: 0, totalLength: 0, headerChecksum: 0, checksumOk: false };
    let p: Ipv4Packet;
    try {
      p = decodeIpv4(b, undefined, info);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      // RFC 1122 §3.2.1.2: a datagram whose header checksum fails is silently discarded.
      this.dropped('ipv4', e.field === 'checksum' ? 'ipv4.drop.checksum' : 'ipv4.drop.malformed', e.message);
      return;
    }
    this.counters.inc('ipv4.rx');
    if (this.trace.enabled)
      this.emit('ipv4', 'in', summary4(p, info.totalLength), fields4(p, info.totalLength));
    this.process4(p, b.subarray(0, info.totalLength), info.headerLength, iface);
  }

  private process4(p: Ipv4Packet, b: Uint8Array, headerLength: number, iface: HostInterface): void {
    const srcBytes = b.subarray(12, 16);
    // RFC 1122 §3.2.1.3: a broadcast or multicast source is discarded, and so is a
    // loopback source (127/8) arriving on a real interface.
    if (
      isIpv4Multicast(srcBytes) ||
      this.broadcasts.has(p.src) ||
      (srcBytes[0] === 127 && iface !== this.loopback)
    ) {
      this.dropped('ipv4', 'ipv4.drop.bad-source', `source ${p.src}`);
      return;
    }
    const toUs = this.local.has(p.dst);
    const dstBytes = b.subarray(16, 20);
    const broadcast = !toUs && (this.broadcasts.has(p.dst) || isIpv4LimitedBroadcast(dstBytes));
    // 224.0.0.1 all-systems (RFC 1112); other groups are not joined.
    const multicast = !toUs && p.dst === '224.0.0.1';
    if (!toUs && !broadcast && !multicast) {
      // A host does not forward (RFC 1122 §3.3.1.6 is off by default).
      this.dropped('ipv4', isIpv4Multicast(dstBytes) ? 'ipv4.drop.multicast' : 'ipv4.drop.not-for-us', p.dst);
      return;
    }
    if (p.moreFragments || p.fragmentOffset !== 0) {
      const first = p.fragmentOffset === 0;
      const out = this.reasm4.add(
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
        this.clock.now(),
      );
      this.armReassemblyTimer();
      if (out === undefined) return;
      const whole = { ...out.header, moreFragments: false, fragmentOffset: 0, payload: out.payload };
      let full: Uint8Array;
      try {
        full = encodeIpv4(whole);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        this.dropped('ipv4', 'reasm.drop.too-long', e.message);
        return;
      }
      if (this.trace.enabled) {
        this.emit(
          'ipv4',
          'local',
          `reassembled ${summary4(whole, full.length)}`,
          fields4(whole, full.length),
        );
      }
      this.process4(whole, full, full.length - out.payload.length, iface);
      return;
    }
    const d: IpDelivery = {
      version: 4,
      src: p.src,
      dst: p.dst,
      protocol: p.protocol,
      ttl: p.ttl,
      payload: p.payload,
      ecn: p.ecn,
      original: b.subarray(0, Math.min(b.length, headerLength + QUOTE_V4)),
    };
    if (p.protocol === IPPROTO_ICMP) this.icmp4In(d, broadcast || multicast);
    const h = this.handlers.get(p.protocol);
    if (h !== undefined) {
      this.counters.inc('ipv4.delivered');
      h.receive(d);
      return;
    }
    if (p.protocol === IPPROTO_ICMP) return;
    this.dropped('ipv4', 'ipv4.drop.unknown-protocol', `protocol ${p.protocol}`);
    // RFC 1122 §3.2.2.1: protocol unreachable for an upper layer nobody speaks.
    if (!broadcast && !multicast) this.sendUnreachable(d, 'protocol');
  }

  private receive6(b: Uint8Array, iface: HostInterface): void {
    const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
    let p: Ipv6Packet;
    try {
      p = decodeIpv6(b, undefined, info);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped('ipv6', 'ipv6.drop.malformed', e.message);
      return;
    }
    const end = IPV6_HEADER_LENGTH + info.payloadLength;
    this.counters.inc('ipv6.rx');
    if (this.trace.enabled) this.emit('ipv6', 'in', summary6(p, end), fields6(p, end));
    this.process6(p, b.subarray(0, end), info, iface);
  }

  private process6(p: Ipv6Packet, b: Uint8Array, info: Ipv6DecodeInfo, iface: HostInterface): void {
    const srcBytes = b.subarray(8, 24);
    if (
      isIpv6Multicast(srcBytes) ||
      isUnspecified(srcBytes) ||
      (p.src === '::1' && iface !== this.loopback)
    ) {
      // RFC 4291 §2.7: multicast never a source; '::' only in address configuration we do not run.
      this.dropped('ipv6', 'ipv6.drop.bad-source', `source ${p.src}`);
      return;
    }
    const toUs = this.local.has(p.dst);
    const multicast = !toUs && isIpv6Multicast(b.subarray(24, 40));
    if (!toUs) {
      if (!multicast) {
        this.dropped('ipv6', 'ipv6.drop.not-for-us', p.dst);
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
      const h = hs[i]!;
      const at = info.extOffsets[i]!;
      if (h.kind === 'hop-by-hop' || h.kind === 'destination') {
        if (!this.checkOptions6(p, b, at, multicast)) return;
      } else if (h.kind === 'routing') {
        // RFC 8200 §4.4: no Routing type is recognized here (type 0 is deprecated, RFC 5095),
        // so one with Segments Left > 0 is refused, pointing at the Routing Type field.
        if (h.segmentsLeft !== 0) {
          this.dropped('ipv6', 'ipv6.drop.routing-header', `routing type ${h.routingType}`);
          if (!multicast) this.paramProblem6(p, b, ICMPV6_PARAM.header, at + 2);
          return;
        }
      } else if (h.kind === 'fragment') {
        this.fragment6(p, b, h, i, at, iface, multicast);
        return;
      }
    }
    const d: IpDelivery = {
      version: 6,
      src: p.src,
      dst: p.dst,
      protocol: p.nextHeader,
      ttl: p.hopLimit,
      payload: p.payload,
      ecn: p.trafficClass & 3,
      original: b.subarray(0, Math.min(b.length, info.headerLength + QUOTE_V6)),
    };
    if (p.nextHeader === IPPROTO_ICMPV6) this.icmp6In(d, multicast, iface);
    const h = this.handlers.get(p.nextHeader);
    if (h !== undefined) {
      this.counters.inc('ipv6.delivered');
      h.receive(d);
      return;
    }
    if (p.nextHeader === IPPROTO_ICMPV6) return;
    if (p.nextHeader === NH_NO_NEXT_HEADER) {
      this.counters.inc('ipv6.no-next-header');
      return;
    }
    this.dropped('ipv6', 'ipv6.drop.unknown-next-header', `next header ${p.nextHeader}`);
    // RFC 8200 §4: Parameter Problem code 1 pointing at the unrecognized Next Header.
    if (!multicast) this.paramProblem6(p, b, ICMPV6_PARAM.nextHeader, info.lastNextHeaderOffset);
  }

  /** RFC 8200 §4.2: the two high bits of an unrecognized option's type say what to do. */
  private checkOptions6(p: Ipv6Packet, b: Uint8Array, at: number, multicast: boolean): boolean {
    const end = at + (b[at + 1]! + 1) * 8;
    let pos = at + 2;
    while (pos < end) {
      const type = b[pos]!;
      if (type === 0) {
        pos++;
        continue;
      }
      // PadN (1) and Router Alert (5, RFC 2711) are understood; Router Alert needs no action at a host.
      if (type !== 1 && type !== 5) {
        const action = type >> 6;
        if (action !== 0) {
          this.dropped('ipv6', 'ipv6.drop.unknown-option', `option 0x${type.toString(16)}`);
          if (action === 2 || (action === 3 && !multicast))
            this.paramProblem6(p, b, ICMPV6_PARAM.option, pos, true);
          return false;
        }
      }
      pos += 2 + b[pos + 1]!;
    }
    return true;
  }

  private fragment6(
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
      this.dropped('ipv6', 'reasm.drop.bad-length', `fragment of ${len} bytes`);
      if (!multicast) this.paramProblem6(p, b, ICMPV6_PARAM.header, 4);
      return;
    }
    // ... and none may reach past 65535 octets of fragmentable part.
    if (offset + len > 0xffff) {
      this.dropped('ipv6', 'reasm.drop.too-long', `fragment ends at ${offset + len}`);
      if (!multicast) this.paramProblem6(p, b, ICMPV6_PARAM.header, at + 2);
      return;
    }
    // RFC 8200 §4.5 (after RFC 7112): the first fragment must hold the whole header chain up
    // to the upper-layer header; otherwise Parameter Problem code 3 with pointer zero.
    if (offset === 0 && fh.moreFragments && !this.chainComplete(p.nextHeader, p.payload)) {
      this.dropped('ipv6', 'ipv6.drop.incomplete-chain', 'first fragment lacks the upper-layer header');
      if (!multicast) this.paramProblem6(p, b, 3, 0);
      return;
    }
    const perFragment = p.extensionHeaders.slice(0, index);
    let whole: Ipv6Packet;
    if (offset === 0 && !fh.moreFragments) {
      // RFC 6946: an atomic fragment is processed alone, never mixed with queued fragments.
      this.counters.inc('ipv6.atomic-fragment');
      whole = { ...p, extensionHeaders: perFragment };
    } else {
      const first = offset === 0;
      const out = this.reasm6.add(
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
        this.clock.now(),
      );
      this.armReassemblyTimer();
      if (out === undefined) return;
      whole = { ...out.header, payload: out.payload };
    }
    // Rebuild the datagram without its Fragment header and run it through the normal path,
    // so that the rest of the chain, offsets for ICMP pointers and quotes all come out right.
    let chain: ReturnType<typeof decodeIpv6ExtensionChain>;
    try {
      chain = decodeIpv6ExtensionChain(whole.nextHeader, whole.payload);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped('ipv6', 'ipv6.drop.malformed', `reassembled: ${e.message}`);
      return;
    }
    if (chain.headers.some((h) => h.kind === 'fragment')) {
      this.dropped('ipv6', 'ipv6.drop.malformed', 'nested Fragment header');
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
      this.dropped('ipv6', 'reasm.drop.too-long', e.message);
      return;
    }
    const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
    const again = decodeIpv6(full, undefined, info);
    if (this.trace.enabled) {
      this.emit('ipv6', 'local', `reassembled ${summary6(again, full.length)}`, fields6(again, full.length));
    }
    this.process6(again, full, info, iface);
  }

  private chainComplete(first: number, bytes: Uint8Array): boolean {
    try {
      decodeIpv6ExtensionChain(first, bytes);
      return true;
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      return false;
    }
  }

  // ---- ICMP ---------------------------------------------------------------------------

  private icmp4In(d: IpDelivery, toGroup: boolean): void {
    let m: IcmpMessage;
    try {
      m = decodeIcmpv4(d.payload);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped(
        'icmpv4',
        e.field === 'checksum' ? 'icmpv4.drop.checksum' : 'icmpv4.drop.malformed',
        e.message,
      );
      return;
    }
    this.counters.inc('icmpv4.rx');
    switch (m.kind) {
      case 'echo-request': {
        // RFC 1122 §3.2.2.6: an echo request to a broadcast or multicast address MAY be ignored.
        if (toGroup) {
          this.dropped('icmpv4', 'icmpv4.drop.echo-to-group', d.dst);
          return;
        }
        const reply = encodeIcmpv4({ ...m, kind: 'echo-reply' });
        const r = this.send({ src: d.dst, dst: d.src, protocol: IPPROTO_ICMP, payload: reply });
        this.counters.inc(r.ok ? 'icmpv4.echo.replied' : 'icmpv4.echo.reply-failed');
        return;
      }
      case 'echo-reply':
        this.pingReply(4, d.src, m, d.ttl, d.payload.length);
        return;
      case 'destination-unreachable':
      case 'time-exceeded':
      case 'parameter-problem':
        this.icmpErrorIn(4, d.src, m);
        return;
      default:
        this.counters.inc('icmpv4.unhandled');
    }
  }

  private icmp6In(d: IpDelivery, toGroup: boolean, iface: HostInterface): void {
    let m: IcmpMessage;
    try {
      m = decodeIcmpv6(d.payload, d.src, d.dst);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped(
        'icmpv6',
        e.field === 'checksum' ? 'icmpv6.drop.checksum' : 'icmpv6.drop.malformed',
        e.message,
      );
      return;
    }
    this.counters.inc('icmpv6.rx');
    switch (m.kind) {
      case 'echo-request': {
        // RFC 4443 §4.2: a reply to a multicast request comes from a unicast address of the interface.
        const src = toGroup ? (iface.ipv6?.address ?? this.sourceFor(d.src)) : d.dst;
        if (src === undefined) {
          this.counters.inc('icmpv6.echo.reply-failed');
          return;
        }
        const reply = encodeIcmpv6({ ...m, kind: 'echo-reply' }, src, d.src);
        const r = this.send({ src, dst: d.src, protocol: IPPROTO_ICMPV6, payload: reply });
        this.counters.inc(r.ok ? 'icmpv6.echo.replied' : 'icmpv6.echo.reply-failed');
        return;
      }
      case 'echo-reply':
        this.pingReply(6, d.src, m, d.ttl, d.payload.length);
        return;
      case 'destination-unreachable':
      case 'packet-too-big':
      case 'time-exceeded':
      case 'parameter-problem':
        this.icmpErrorIn(6, d.src, m);
        return;
      default: {
        const t = m.kind === 'unknown' ? m.type : -1;
        // Neighbour discovery (RFC 4861, types 133-137) and MLD (RFC 2710/3810) from a kernel:
        // there is no link layer to resolve on a raw-IP link, so they are dropped quietly.
        if (t >= 133 && t <= 137) this.counters.inc('icmpv6.drop.ndp');
        else if ((t >= 130 && t <= 132) || t === 143) this.counters.inc('icmpv6.drop.mld');
        // RFC 4443 §2.4(b): an unknown informational message is silently discarded.
        else this.counters.inc('icmpv6.unhandled');
      }
    }
  }

  /** An ICMP error arrived: decode the quoted datagram and tell whoever sent it (RFC 1122 §3.2.2, §4.1.3.3). */
  private icmpErrorIn(version: IpVersion, reporter: string, m: IcmpMessage): void {
    if (
      m.kind !== 'destination-unreachable' &&
      m.kind !== 'packet-too-big' &&
      m.kind !== 'time-exceeded' &&
      m.kind !== 'parameter-problem'
    )
      return;
    const layer = version === 4 ? 'icmpv4' : 'icmpv6';
    let src: string;
    let dst: string;
    let protocol: number;
    let quoted: Uint8Array;
    let firstFragment = true;
    let quotedTotal = 0;
    try {
      if (version === 4) {
        const q = decodeIpv4(m.original, { truncated: true, verifyChecksum: false }, {} as Ipv4DecodeInfo);
        src = q.src;
        dst = q.dst;
        protocol = q.protocol;
        quoted = q.payload;
        firstFragment = q.fragmentOffset === 0;
        quotedTotal = (m.original[2]! << 8) | m.original[3]!;
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
          if (firstFragment && this.chainComplete(q.nextHeader, q.payload)) {
            const chain = decodeIpv6ExtensionChain(q.nextHeader, q.payload);
            protocol = chain.nextHeader;
            quoted = q.payload.subarray(chain.payloadOffset);
          }
        }
      }
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.dropped(layer, `${layer}.drop.bad-quote`, e.message);
      return;
    }
    // Only errors about datagrams this host sent are believed (RFC 5927 §4.1).
    if (!this.local.has(src)) {
      this.dropped(layer, `${layer}.drop.error-not-ours`, `quoted source ${src}`);
      return;
    }
    let kind: IcmpErrorReport['kind'];
    let mtu: number | undefined;
    if (m.kind === 'destination-unreachable') {
      if (version === 4 && m.code === ICMPV4_UNREACH.fragmentationNeeded) {
        // Reported as 'packet-too-big': the same news as ICMPv6 type 2 (RFC 1191), and not a
        // hard error for transports (RFC 1122 §4.2.3.9 predates path MTU discovery).
        kind = 'packet-too-big';
        mtu = m.nextHopMtu ?? 0;
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
    if (mtu !== undefined) this.lowerPathMtu(version, dst, mtu);
    this.counters.inc(`${layer}.rx.error`);
    if (!firstFragment) {
      this.counters.inc(`${layer}.error.non-first-fragment`);
      return;
    }
    const report: IcmpErrorReport = {
      version,
      kind,
      code: m.code,
      reporter,
      src,
      dst,
      protocol,
      quoted,
      mtu,
    };
    if (protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
      const echoType = version === 4 ? ICMPV4_ECHO_REQUEST : ICMPV6_ECHO_REQUEST;
      if (quoted.length >= 8 && quoted[0] === echoType) {
        this.pingError(version, dst, (quoted[4]! << 8) | quoted[5]!, (quoted[6]! << 8) | quoted[7]!, report);
      }
      return;
    }
    const h = this.handlers.get(protocol);
    if (h?.receiveIcmpError) h.receiveIcmpError(report);
    else this.counters.inc(`${layer}.error.unclaimed`);
  }

  /** RFC 1191 §6.1 / RFC 8201 §4: lower (never raise) the estimate, not below 68 / 1280. */
  private lowerPathMtu(version: IpVersion, dst: string, reported: number): void {
    const floor = version === 4 ? 68 : 1280;
    const mtu = Math.max(floor, reported);
    const current = this.mtuFor(dst);
    if (mtu >= current) return;
    // Bounded like the route cache: a flood of packet-too-big messages naming many
    // destinations cannot grow it without limit (entries are only hints, RFC 8201 §5.3).
    if (this.pmtu.size >= MAX_PMTU_ENTRIES && !this.pmtu.has(dst)) this.prunePmtu();
    this.pmtu.set(dst, { mtu, expires: this.clock.now() + this.pmtuExpiryMs });
    this.counters.inc('pmtu.lowered');
    if (this.trace.enabled) {
      this.emit(
        version === 4 ? 'ipv4' : 'ipv6',
        'local',
        `path MTU to ${dst} ${current}→${mtu}`,
        { dst, mtu },
        undefined,
        version === 4 ? 'RFC 1191 §6.1' : 'RFC 8201 §4',
      );
    }
  }

  sendUnreachable(d: IpDelivery, reason: 'port' | 'protocol' | 'admin'): void {
    if (d.version === 4) {
      const code =
        reason === 'port'
          ? ICMPV4_UNREACH.port
          : reason === 'protocol'
            ? ICMPV4_UNREACH.protocol
            : ICMPV4_UNREACH.adminProhibited;
      this.sendIcmpError(
        4,
        (original) => ({ kind: 'destination-unreachable', code, nextHopMtu: 0, original }),
        d,
      );
      return;
    }
    if (reason === 'protocol') {
      let pointer = 6;
      try {
        const info = { extOffsets: [] as number[] } as Ipv6DecodeInfo;
        decodeIpv6(d.original, { truncated: true }, info);
        pointer = info.lastNextHeaderOffset;
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
      }
      this.sendIcmpError(
        6,
        (original) => ({ kind: 'parameter-problem', code: ICMPV6_PARAM.nextHeader, pointer, original }),
        d,
      );
      return;
    }
    const code = reason === 'port' ? ICMPV6_UNREACH.port : ICMPV6_UNREACH.adminProhibited;
    this.sendIcmpError(6, (original) => ({ kind: 'destination-unreachable', code, original }), d);
  }

  private paramProblem6(
    p: Ipv6Packet,
    b: Uint8Array,
    code: number,
    pointer: number,
    toMulticastOk = false,
  ): void {
    this.sendIcmpError(
      6,
      (original) => ({ kind: 'parameter-problem', code, pointer, original }),
      { src: p.src, dst: p.dst, original: b.subarray(0, Math.min(b.length, IPV6_HEADER_LENGTH + QUOTE_V6)) },
      toMulticastOk,
    );
  }

  /**
   * Send an ICMP error about `off`, unless RFC 1122 §3.2.2 / RFC 4443 §2.4(e) forbid it:
   * never about an ICMP error, a datagram to or from a broadcast or multicast address, or a
   * fragment other than the first. Rate-limited by a token bucket (RFC 4443 §2.4(f)).
   */
  private sendIcmpError(
    version: IpVersion,
    make: (quote: Uint8Array) => IcmpMessage,
    off: { src: string; dst: string; original: Uint8Array },
    multicastDstOk = false,
  ): boolean {
    const o = off.original;
    const srcBytes = cachedAddressBytes(off.src);
    const dstBytes = cachedAddressBytes(off.dst);
    if (srcBytes === undefined || dstBytes === undefined) return false;
    let why: string | undefined;
    if (version === 4) {
      const hl = o.length >= IPV4_MIN_HEADER ? (o[0]! & 0x0f) * 4 : 0;
      if (hl < IPV4_MIN_HEADER) why = 'malformed';
      else if ((((o[6]! & 0x1f) << 8) | o[7]!) !== 0) why = 'fragment';
      else if (o[9] === IPPROTO_ICMP && (o.length <= hl || isIcmpv4ErrorType(o[hl]!))) why = 'icmp-error';
      else if (
        isIpv4Multicast(dstBytes) ||
        this.broadcasts.has(off.dst) ||
        isIpv4LimitedBroadcast(dstBytes)
      ) {
        why = 'to-group';
      } else if (
        isIpv4Multicast(srcBytes) ||
        this.broadcasts.has(off.src) ||
        isUnspecified(srcBytes) ||
        srcBytes[0] === 127
      ) {
        why = 'bad-source';
      }
    } else {
      try {
        const q = decodeIpv6(o, { truncated: true });
        const fh = q.extensionHeaders.find((h) => h.kind === 'fragment');
        if (fh?.kind === 'fragment' && fh.fragmentOffset !== 0) why = 'fragment';
        else if (
          q.nextHeader === IPPROTO_ICMPV6 &&
          (q.payload.length === 0 || isIcmpv6ErrorType(q.payload[0]!))
        ) {
          why = 'icmp-error';
        }
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
        why = 'malformed';
      }
      if (why === undefined) {
        if (isIpv6Multicast(dstBytes) && !multicastDstOk) why = 'to-group';
        else if (isIpv6Multicast(srcBytes) || isUnspecified(srcBytes)) why = 'bad-source';
      }
    }
    const layer = version === 4 ? 'icmpv4' : 'icmpv6';
    if (why !== undefined) {
      this.counters.inc(`${layer}.error.suppressed.${why}`);
      return false;
    }
    const now = this.clock.now();
    this.icmpTokens = Math.min(
      this.icmpBurst,
      this.icmpTokens + ((now - this.icmpTokensAt) * this.icmpRate) / 1000,
    );
    this.icmpTokensAt = now;
    if (this.icmpTokens < 1) {
      this.dropped(
        layer,
        `${layer}.error.rate-limited`,
        `error to ${off.src}`,
        version === 4 ? 'RFC 1812 §4.3.2.8' : 'RFC 4443 §2.4(f)',
      );
      return false;
    }
    this.icmpTokens -= 1;
    const quote = o.subarray(0, Math.min(o.length, version === 4 ? QUOTE_V4 : QUOTE_V6));
    const src = this.local.has(off.dst) ? off.dst : this.sourceFor(off.src);
    if (src === undefined) {
      this.counters.inc(`${layer}.error.no-source`);
      return false;
    }
    const m = make(quote);
    const payload = version === 4 ? encodeIcmpv4(m) : encodeIcmpv6(m, src, off.src);
    const r = this.send({
      src,
      dst: off.src,
      protocol: version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
      payload,
    });
    if (r.ok) this.counters.inc(`${layer}.tx.error`);
    return r.ok;
  }

  /** What the host holds right now: a leak shows as one of these growing under load. */
  get stats(): HostStats {
    return {
      timersArmed: this.timers.armed,
      pendingPings: this.pings.size,
      reassemblyDatagrams: this.reasm4.size + this.reasm6.size,
      reassemblyBytes: this.reasm4.bufferedBytes + this.reasm6.bufferedBytes,
      pmtuEntries: this.pmtu.size,
    };
  }

  private prunePmtu(): void {
    const now = this.clock.now();
    for (const [k, v] of this.pmtu) if (v.expires <= now) this.pmtu.delete(k);
    // Still full: forget the oldest (Map iterates in insertion order).
    while (this.pmtu.size >= MAX_PMTU_ENTRIES) {
      const first = this.pmtu.keys().next();
      if (first.done) break;
      this.pmtu.delete(first.value);
    }
  }

  // ---- reassembly timer ---------------------------------------------------------------

  private armReassemblyTimer(): void {
    const a = this.reasm4.nextTimeout();
    const b = this.reasm6.nextTimeout();
    const next = a === undefined ? b : b === undefined ? a : Math.min(a, b);
    if (next === undefined) return;
    if (this.reasmTimer !== undefined && this.reasmTimerAt <= next) return;
    this.reasmTimer?.cancel();
    this.reasmTimerAt = next;
    this.reasmTimer = this.timers.setTimer(next, () => {
      this.reasmTimer = undefined;
      this.reasmTimerAt = Number.POSITIVE_INFINITY;
      this.reassemblyTimeout();
    });
  }

  private reassemblyTimeout(): void {
    const now = this.clock.now();
    for (const e of this.reasm4.expire(now)) {
      this.traceDrop('ipv4', 'reasm.drop.timeout', `reassembly of ${e.key} timed out`, 'RFC 792');
      // RFC 792: Time Exceeded code 1 only when fragment zero arrived.
      if (e.header && e.quote) {
        this.sendIcmpError(4, (original) => ({ kind: 'time-exceeded', code: 1, original }), {
          src: e.header.src,
          dst: e.header.dst,
          original: e.quote,
        });
      }
    }
    for (const e of this.reasm6.expire(now)) {
      this.traceDrop('ipv6', 'reasm.drop.timeout', `reassembly of ${e.key} timed out`, 'RFC 8200 §4.5');
      if (e.header && e.quote) {
        this.sendIcmpError(6, (original) => ({ kind: 'time-exceeded', code: 1, original }), {
          src: e.header.src,
          dst: e.header.dst,
          original: e.quote,
        });
      }
    }
    this.armReassemblyTimer();
  }

  // ---- ping ---------------------------------------------------------------------------

  /**
   * Send one echo request and call `done` once: with the reply, or with a PingError on
   * timeout, an ICMP error about the request, or a local send failure. Works on any Clock;
   * on a VirtualClock nothing happens until the driver advances time.
   */
  sendEcho(
    dst: string,
    opts: PingOptions,
    done: (err: PingError | undefined, r?: PingResult) => void,
  ): EchoHandle {
    const id = (opts.id ?? this.pingId) & 0xffff;
    const seq = (opts.seq ?? this.nextPingSeq++) & 0xffff;
    const noop: EchoHandle = { id, seq, cancel: () => {} };
    let target: string;
    try {
      target = canonicalIp(dst);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      done(new PingError('send-failed', `not an address: ${dst}`));
      return noop;
    }
    const version: IpVersion = target.includes(':') ? 6 : 4;
    const size = opts.size ?? 56;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = i & 0xff;
    const m: IcmpMessage = { kind: 'echo-request', code: 0, identifier: id, sequence: seq, data };
    const key = `${version}|${target}|${id}|${seq}`;
    const old = this.pings.get(key);
    if (old) {
      old.timer.cancel();
      this.pings.delete(key);
      old.done(new PingError('cancelled', 'superseded by a new request with the same id and seq'));
    }
    let payload: Uint8Array;
    if (version === 4) payload = encodeIcmpv4(m);
    else {
      const src = opts.src ?? this.sourceFor(target);
      if (src === undefined) {
        done(
          new PingError('send-failed', `no route to ${target}`, undefined, { ok: false, error: 'no-route' }),
        );
        return noop;
      }
      payload = encodeIcmpv6(m, src, target);
    }
    const timeoutMs = opts.timeoutMs ?? 1000;
    const pending: PendingPing = {
      sentAt: this.clock.now(),
      id,
      seq,
      data,
      done,
      timer: this.timers.setTimer(this.clock.now() + timeoutMs, () => {
        if (this.pings.get(key) !== pending) return;
        this.pings.delete(key);
        done(new PingError('timeout', `no echo reply from ${target} within ${timeoutMs} ms`));
      }),
    };
    this.pings.set(key, pending);
    const r = this.send({
      src: opts.src,
      dst: target,
      protocol: version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
      payload,
      ttl: opts.ttl,
      dontFragment: opts.dontFragment,
    });
    if (!r.ok) {
      pending.timer.cancel();
      this.pings.delete(key);
      done(new PingError('send-failed', `send to ${target} failed: ${r.error}`, undefined, r));
      return noop;
    }
    return {
      id,
      seq,
      cancel: () => {
        if (this.pings.get(key) !== pending) return;
        pending.timer.cancel();
        this.pings.delete(key);
      },
    };
  }

  /** Promise form of sendEcho: resolves with the reply, rejects with a PingError. */
  ping(dst: string, opts: PingOptions = {}): Promise<PingResult> {
    return new Promise((resolve, reject) => {
      this.sendEcho(dst, opts, (err, r) => (err ? reject(err) : resolve(r!)));
    });
  }

  private pingReply(version: IpVersion, from: string, m: IcmpMessage, ttl: number, bytes: number): void {
    if (m.kind !== 'echo-reply') return;
    const key = `${version}|${from}|${m.identifier}|${m.sequence}`;
    const p = this.pings.get(key);
    if (p === undefined) {
      this.counters.inc(`icmpv${version}.echo.unmatched-reply`);
      return;
    }
    this.pings.delete(key);
    p.timer.cancel();
    if (m.data.length !== p.data.length || m.data.some((x, i) => x !== p.data[i])) {
      // ping(8) reports "wrong data byte" but still counts the reply.
      this.counters.inc(`icmpv${version}.echo.data-mismatch`);
    }
    p.done(undefined, {
      rtt: this.clock.now() - p.sentAt,
      ttl,
      bytes,
      from,
      id: m.identifier,
      seq: m.sequence,
    });
  }

  private pingError(version: IpVersion, dst: string, id: number, seq: number, report: IcmpErrorReport): void {
    const key = `${version}|${dst}|${id}|${seq}`;
    const p = this.pings.get(key);
    if (p === undefined) return;
    this.pings.delete(key);
    p.timer.cancel();
    p.done(new PingError('icmp-error', `${report.kind} code ${report.code} from ${report.reporter}`, report));
  }

  // ---- tracing ------------------------------------------------------------------------

  private dropped(layer: string, counter: string, detail: string, rfc?: string): void {
    countDrop(this.counters, this.trace, counter, () => ({
      t: this.clock.now(),
      host: this.name,
      layer,
      summary: `drop ${counter}: ${detail}`,
      ...(rfc ? { rfc } : {}),
    }));
  }

  private traceDrop(layer: string, counter: string, detail: string, rfc?: string): void {
    if (!this.trace.enabled) return;
    this.emit(layer, 'drop', `drop ${counter}: ${detail}`, undefined, counter, rfc);
  }

  private emit(
    layer: string,
    dir: TraceEvent['dir'],
    summary: string,
    fields?: Record<string, unknown>,
    reason?: string,
    rfc?: string,
  ): void {
    const e: TraceEvent = { t: this.clock.now(), host: this.name, layer, dir, summary };
    if (fields) e.fields = fields;
    if (reason) e.reason = reason;
    if (rfc) e.rfc = rfc;
    this.trace.emit(e);
  }
}

function upperSummary(version: IpVersion, protocol: number, payload: Uint8Array, first: boolean): string {
  if (!first) return PROTO_NAMES[protocol] ?? `proto=${protocol}`;
  if (protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) return describeIcmp(version, payload);
  return PROTO_NAMES[protocol] ?? `proto=${protocol}`;
}

export function summary4(p: Ipv4Packet, length: number): string {
  const first = p.fragmentOffset === 0;
  const frag =
    p.moreFragments || !first
      ? ` frag id=${p.identification} off=${p.fragmentOffset * 8}${p.moreFragments ? ' MF' : ''}`
      : '';
  const df = p.dontFragment ? ' DF' : '';
  return `IPv4 ${p.src}→${p.dst} ${upperSummary(4, p.protocol, p.payload, first)} len=${length} ttl=${p.ttl}${df}${frag}`;
}

export function summary6(p: Ipv6Packet, length: number): string {
  const fh = p.extensionHeaders.find((h) => h.kind === 'fragment');
  const first = fh?.kind !== 'fragment' || fh.fragmentOffset === 0;
  const ext = p.extensionHeaders.length
    ? ` ext=${p.extensionHeaders.map((h) => (h.kind === 'fragment' ? `frag(id=${h.identification} off=${h.fragmentOffset * 8}${h.moreFragments ? ' M' : ''})` : h.kind)).join(',')}`
    : '';
  return `IPv6 ${p.src}→${p.dst} ${upperSummary(6, p.nextHeader, p.payload, first)} len=${length} hlim=${p.hopLimit}${ext}`;
}

function fields4(p: Ipv4Packet, length: number): Record<string, unknown> {
  return {
    version: 4,
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    ttl: p.ttl,
    totalLength: length,
    identification: p.identification,
    dontFragment: p.dontFragment,
    moreFragments: p.moreFragments,
    fragmentOffset: p.fragmentOffset,
    dscp: p.dscp,
    ecn: p.ecn,
    options: p.options.map((o) => o.type),
  };
}

function fields6(p: Ipv6Packet, length: number): Record<string, unknown> {
  return {
    version: 6,
    src: p.src,
    dst: p.dst,
    nextHeader: p.nextHeader,
    hopLimit: p.hopLimit,
    length,
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
    extensionHeaders: p.extensionHeaders.map((h) => h.kind),
  };
}
