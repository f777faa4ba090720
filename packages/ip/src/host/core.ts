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
 * Where each rule lives: this file has the state, the dispatch by version and the time;
 * send.ts the send path (source choice RFC 1122 §3.3.4.2, fragmentation RFC 791 §2.3 /
 * RFC 8200 §5, header room, checksum offload, software GSO); receive4.ts IPv4 arriving
 * (RFC 791, RFC 1122 §3.2.1); receive6.ts IPv6 arriving (RFC 8200 §4: extension headers,
 * §4.2 options, §4.5 fragments); routing.ts the table and longest-prefix match (RFC 1812
 * §5.2.4.3); reassembly.ts the queues and their deadline (RFC 791 §3.2, RFC 8200 §4.5);
 * pmtu.ts path-MTU memory (RFC 1191, RFC 8201); icmp-in.ts ICMP arriving (RFC 792,
 * RFC 4443); icmp-out.ts ICMP errors sent; icmp-rate.ts their token bucket; echo.ts ping
 * (the request and its book); trace.ts how packets read on the ladder; context.ts what
 * these files are handed. driver.ts is Host, which gives all this a clock.
 */
import type { Link, LinkOffloads, PacketInfo } from '@stepwire/link';
import type { Counters, Prng } from '@stepwire/wire';
import { cachedAddressBytes } from '../address.ts';
import type { IpAddress, IpDelivery, SendOptions, SendResult } from '../types.ts';
import {
  type Cx,
  dropped,
  type IpAction,
  PacketCounters,
  type ReceiveContext,
  traceEvent,
} from './context.ts';
import { EchoBook, type EchoStart, type PingOptions, sendEchoRequest } from './echo.ts';
import { icmpUnreachable, offendingDatagram, sendIcmpError } from './icmp-out.ts';
import { IcmpTokenBucket } from './icmp-rate.ts';
import { PathMtuCache } from './pmtu.ts';
import { HostReassembly } from './reassembly.ts';
import { receive4 } from './receive4.ts';
import { receive6 } from './receive6.ts';
import { type HostInterface, type InterfaceConfig, type RouteEntry, RoutingTable } from './routing.ts';
import { IpSender } from './send.ts';

export type { Cx, IpAction } from './context.ts';
export type { EchoStart } from './echo.ts';

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

export interface IpCoreStats {
  pendingEchoes: number;
  reassemblyDatagrams: number;
  reassemblyBytes: number;
  pmtuEntries: number;
}

const NOT_TRACED = { enabled: false };

export class IpCore {
  readonly name: string;
  readonly counters: Counters;
  readonly defaultTtl: number;
  readonly routing = new RoutingTable();
  readonly loopback: HostInterface;
  private readonly trace: { readonly enabled: boolean };
  private readonly protocols = new Set<number>();
  private readonly reassembly: HostReassembly;
  private readonly pmtu: PathMtuCache;
  private readonly icmpBucket: IcmpTokenBucket;
  private readonly echoes = new EchoBook();
  /** This core's state as its pieces see it (icmp-in.ts, icmp-out.ts, receive4.ts, receive6.ts, send.ts). */
  private readonly ctx: ReceiveContext;
  /** The send path, with the IPv4 and IPv6 fragment identifiers it hands out (send.ts). */
  private readonly sender: IpSender;
  private readonly pingId: number;
  /** See workAt. */
  private readonly packetCx: { now: number; out: IpAction[] } = { now: 0, out: [] };
  private nextPingSeq = 1;

  constructor(opts: IpCoreOptions) {
    this.name = opts.name;
    this.counters = opts.counters;
    this.trace = opts.trace ?? NOT_TRACED;
    this.defaultTtl = opts.defaultTtl ?? 64;
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
    const firstIpId = opts.prng.u32() & 0xffff;
    const firstFragId = opts.prng.u32();
    this.pingId = opts.prng.u32() & 0xffff;
    this.loopback = this.routing.addInterface({ link: opts.loopback, ipv4: '127.0.0.1/8', ipv6: '::1/128' });
    this.ctx = {
      name: this.name,
      counters: this.counters,
      perPacket: new PacketCounters(this.counters),
      trace: this.trace,
      routing: this.routing,
      protocols: this.protocols,
      echoes: this.echoes,
      pmtu: this.pmtu,
      icmpBucket: this.icmpBucket,
      loopback: this.loopback,
      reassembly: this.reassembly,
      mtuFor: (dst, now) => this.mtuFor(dst, now),
      sendAt: (cx, opts) => this.sender.send(cx, opts),
    };
    this.sender = new IpSender(this.ctx, this.defaultTtl, opts.softwareGso === true, firstIpId, firstFragId);
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
    return this.pmtu.mtuVia(r.iface.link.mtu, dst, now);
  }

  /** The offloads of the link a datagram to dst would leave on (undefined: none, or no route). */
  offloadsFor(dst: string): LinkOffloads | undefined {
    return this.sender.offloadsFor(dst);
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
        traceEvent(
          this.ctx,
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

  // ---- send path (send.ts) ------------------------------------------------------------

  /** Route, fragment if it must (RFC 791 §2.3, RFC 8200 §5) and queue a datagram this host originates. */
  send(opts: SendOptions, now: number, out: IpAction[]): SendResult {
    return this.sender.send(this.workAt(now, out), opts);
  }

  /**
   * The Cx of the send or receive being worked, one object refilled per packet rather than
   * a new one each time (these two run for every packet). Safe because the core is
   * sans-I/O: nothing it calls can call back into it, and no piece keeps a Cx after the
   * call it was handed to returns.
   */
  private workAt(now: number, out: IpAction[]): Cx {
    const cx = this.packetCx;
    cx.now = now;
    cx.out = out;
    return cx;
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
    const cx = this.workAt(now, out);
    const via = iface ?? this.routing.ifaces[1] ?? this.loopback;
    const first = packet[0];
    if (first === undefined) {
      dropped(this.ctx, cx, 'ip', 'ip.drop.empty', 'empty packet');
      return;
    }
    const version = first >> 4;
    // What the link says of the transport checksum travels up with the datagram; a
    // coalesced super-segment (GRO) larger than the MTU is taken whole (RFC-less: veth, TUN).
    const csum = info?.csum?.kind;
    if (csum !== undefined) this.counters.inc(`ip.rx.csum-${csum}`);
    if (info?.gso !== undefined) this.counters.inc('ip.rx.gro');
    if (version === 4) receive4(this.ctx, cx, packet, via, csum);
    else if (version === 6) receive6(this.ctx, cx, packet, via, csum);
    else dropped(this.ctx, cx, 'ip', 'ip.drop.version', `IP version ${version}`);
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
    return sendEchoRequest(this.ctx, { now, out }, dst, opts, id, seq);
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
}
