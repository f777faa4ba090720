import { classifyIcmp, type IcmpErrorReport, type IpDelivery } from '@stepwire/ip';
import {
  type Counter,
  chooseEphemeralPort,
  countDrop,
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  ParseError,
  seqGt,
  seqLeq,
  seqLt,
  TraceBus,
  type TraceEvent,
} from '@stepwire/wire';
import {
  resetFor,
  type TcpEndpoint as TcpAddress,
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEvent,
  type TcpOutput,
  type TcpState,
} from '../connection/index.ts';
import { systemError, type TcpSystemError } from '../errors.ts';
import { FastOpenCache, FastOpenKeys } from '../fastopen.ts';
import { IsnGenerator } from '../isn.ts';
import { ACK, decodeSegment, describeSegment, RST, SYN, type TcpSegment } from '../segment.ts';
import { SynCookies } from '../syncookie.ts';
import { TcpListener, type TcpListenerStats, type TcpListenOptions } from './listener.ts';
import { listenerSegment, type PassiveHost } from './passive.ts';
import { Tcb, type TcbHost, type TcbOwner } from './tcb.ts';
import {
  type EndpointIp,
  type EndpointSink,
  type TcpConnectionDefaults,
  type TcpEndpointOptions,
  type TcpEndpointStats,
  type TcpOpenOptions,
  tupleKey,
} from './types.ts';

export {
  type EndpointIp,
  type EndpointSink,
  type TcpConnectionDefaults,
  type TcpEndpointOptions,
  type TcpEndpointStats,
  type TcpOpenOptions,
  tupleKey,
} from './types.ts';

/** A trace bus that forwards to another unless muted (for a connection rebuilt from a SYN cookie). */
class GatedTrace extends TraceBus {
  muted = false;
  constructor(private readonly inner: TraceBus) {
    super();
  }
  override get enabled(): boolean {
    return !this.muted && this.inner.enabled;
  }
  override emit(e: TraceEvent): void {
    if (!this.muted) this.inner.emit(e);
  }
}

const RFC_RST = 'RFC 9293 §3.10.7.1';

/**
 * TCP for one host, sans-I/O: every TcpConnection on it, its listeners and the rules
 * between them. Segments (as IP deliveries), ICMP reports, user calls and `now` come in;
 * segments, owner events and wake-up deadlines go out through the EndpointSink. It reads
 * no clock, arms no timer and owns no socket: the `Tcp` driver does.
 *
 * - Segments are decoded with the pseudo-header (RFC 9293 §3.1) and demultiplexed by
 *   4-tuple first, then to a listener on (address, port) or the wildcard (RFC 9293 §3.9.1
 *   leaves the choice of the most specific match to the host; Linux does the same).
 * - Listeners keep a SYN queue and an accept queue bounded by the backlog; a full SYN
 *   queue answers with SYN cookies (RFC 4987 §3.6), a full accept queue drops (Linux
 *   tcp_abort_on_overflow = 0). Fast Open cookies per RFC 7413.
 * - Segments for no connection and no listener get a RST (RFC 9293 §3.10.7.1).
 * - ICMP errors go to the connection they quote (RFC 5927 §4.1: only when the quoted
 *   sequence number is in flight), hard/soft per RFC 1122 §4.2.3.9 and RFC 5461; a
 *   packet-too-big lowers the MSS (RFC 8201, RFC 1191).
 * - Ephemeral ports per RFC 6056 §3.3.1 with the host's seeded Prng.
 * - TIME-WAIT connections stay in the table until their 2*MSL ends (RFC 9293 §3.10.8);
 *   a new SYN with a higher sequence number may reuse the 4-tuple (RFC 9293 §3.10.7.4,
 *   RFC 6191), as Linux allows.
 * - The RFC 5961 §7 limit on ACKs that answer unacceptable segments lives in one place:
 *   the connection (connection/receive.ts, challengeAck and outOfWindowAck). The endpoint
 *   sends what the connection gives it unedited.
 *
 * Counters (on the host): 'tcp.rx', 'tcp.drop.checksum', 'tcp.drop.malformed',
 * 'tcp.drop.not-unicast', 'tcp.drop.no-port', 'tcp.listen.overflow',
 * 'tcp.listen.syn-drop', 'tcp.listen.bad-ack', 'tcp.listen.rst', 'tcp.listen.no-syn',
 * 'tcp.syncookie.sent', 'tcp.syncookie.valid', 'tcp.syncookie.invalid', 'tcp.icmp.hard',
 * 'tcp.icmp.soft', 'tcp.icmp.pmtu', 'tcp.icmp.no-connection', 'tcp.icmp.out-of-window',
 * 'tcp.icmp.malformed', 'tcp.timewait.reuse', 'tcp.timewait.overflow', 'tcp.pmtu.mss-lowered',
 * 'tcp.orphan.reset', 'tcp.orphan.fin-timeout', 'tcp.fastopen.cookie-cached',
 * 'tcp.fastopen.cookie-rejected'.
 */
export class TcpEndpoint implements TcbHost, PassiveHost {
  /** @internal Connections by 4-tuple key. */
  readonly conns = new Map<string, Tcb>();
  /** @internal Listeners by port. */
  readonly listeners = new Map<number, TcpListener[]>();
  readonly isn: IsnGenerator;
  readonly synCookies: SynCookies;
  readonly fastOpenKeys: FastOpenKeys;
  /** The client's Fast Open cookies, per server address (RFC 7413 §4.1.3). */
  readonly fastOpenCache = new FastOpenCache();
  readonly defaults: TcpConnectionDefaults;
  private readonly maxTimeWait: number;
  private readonly finTimeout: number;
  private readonly portMin: number;
  private readonly portMax: number;
  private timeWaitCount = 0;
  private lastTcb: Tcb | undefined;
  /** 'tcp.rx', counted per segment: held, taken on the first (see Counters.counter). */
  private rxCount: Counter | undefined;
  /** The pseudo-header of the segment being verified (receive), reused: see there. */
  private readonly pseudo: { src: Uint8Array; dst: Uint8Array } = { src: NO_ADDRESS, dst: NO_ADDRESS };
  private readonly connTrace: GatedTrace;

  constructor(
    readonly ip: EndpointIp,
    private readonly sink: EndpointSink,
    options: TcpEndpointOptions = {},
  ) {
    this.defaults = options.connection ?? {};
    this.isn = new IsnGenerator(options.isnSecret);
    this.synCookies = new SynCookies(options.synCookieSecret);
    this.fastOpenKeys = new FastOpenKeys(options.fastOpenKey);
    this.maxTimeWait = options.maxTimeWait ?? 32768;
    this.finTimeout = options.finTimeout ?? 60_000;
    [this.portMin, this.portMax] = options.ephemeralPorts ?? [EPHEMERAL_PORT_MIN, EPHEMERAL_PORT_MAX];
    this.connTrace = new GatedTrace(ip.trace);
  }

  // -------------------------------------------------------------------------------------
  // Listening (RFC 9293 §3.10.1, passive OPEN)

  /** Open a listener, or return EADDRINUSE / EADDRNOTAVAIL as a Node-shaped error. */
  listen(opts: TcpListenOptions, now: number): TcpListener | TcpSystemError {
    const any = opts.address === '0.0.0.0' || opts.address === '::';
    if (!any && !this.ip.isLocalAddress(opts.address)) {
      return systemError('listen', 'EADDRNOTAVAIL', opts.address, opts.port);
    }
    const l = new TcpListener(this.ip, opts);
    if (l.port === 0) {
      const p = this.freeListenPort(l);
      if (p === undefined) return systemError('listen', 'EADDRINUSE', opts.address, 0);
      l.port = p;
    } else if (!this.listenPortFree(l, l.port)) {
      return systemError('listen', 'EADDRINUSE', opts.address, opts.port);
    }
    let list = this.listeners.get(l.port);
    if (!list) this.listeners.set(l.port, (list = []));
    list.push(l);
    l.note(now, undefined, 'LISTEN', 'RFC 9293 §3.10.1');
    return l;
  }

  /** Close a listener: connections it had not handed to the application are reset. */
  unlisten(l: TcpListener, now: number): void {
    if (l.closed) return;
    l.closed = true;
    const list = this.listeners.get(l.port);
    if (list) {
      const i = list.indexOf(l);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.listeners.delete(l.port);
    }
    for (const tcb of [...l.synQueue.values(), ...l.acceptQueue]) {
      l.remove(tcb, now);
      if (!tcb.closed) tcb.handle(tcb.conn.abort(now), now);
    }
    l.note(now, undefined, 'closed', 'RFC 9293 §3.10.4');
  }

  /** Take the oldest connection of a listener's accept queue (the application's accept()). */
  accept(l: TcpListener, now: number): Tcb | undefined {
    return l.accept(now);
  }

  private overlaps(a: TcpListener, address: string, ipv6Only: boolean): boolean {
    if (a.address === address) return true;
    const fam = (x: string) => (x.includes(':') ? 6 : 4);
    const covers = (wild: string, v6only: boolean, other: string) =>
      (wild === '0.0.0.0' && fam(other) === 4) || (wild === '::' && (fam(other) === 6 || !v6only));
    return covers(a.address, a.ipv6Only, address) || covers(address, ipv6Only, a.address);
  }

  private listenPortFree(l: TcpListener, port: number): boolean {
    const list = this.listeners.get(port);
    if (!list) return true;
    return !list.some((o) => this.overlaps(o, l.address, l.ipv6Only));
  }

  private freeListenPort(l: TcpListener): number | undefined {
    const n = this.portMax - this.portMin + 1;
    let port = this.portMin + this.ip.prng.int(0, n - 1);
    for (let i = 0; i < n; i++) {
      if (this.listenPortFree(l, port) && !this.portHasConnections(port)) return port;
      port = port === this.portMax ? this.portMin : port + 1;
    }
    return undefined;
  }

  private portHasConnections(port: number): boolean {
    for (const t of this.conns.values()) if (t.conn.local.port === port) return true;
    return false;
  }

  /**
   * RFC 6056 §3.3.1 (Algorithm 1): a random start in the range, then walk up, wrapping,
   * until a port gives a 4-tuple no connection uses and no listener holds the port.
   */
  private ephemeralPort(src: string, remote: TcpAddress): number | undefined {
    return chooseEphemeralPort(
      this.ip.prng,
      this.portMin,
      this.portMax,
      (port) => !this.listeners.has(port) && !this.conns.has(tupleKey(src, port, remote.addr, remote.port)),
    );
  }

  /** The MSS to advertise toward `dst`: the path MTU less the IP and TCP headers (RFC 9293 §3.7.1). */
  mssFor(dst: string): number {
    const v6 = dst.includes(':');
    return Math.max(64, this.ip.mtuFor(dst) - (v6 ? 60 : 40));
  }

  /** The options of a connection: the endpoint's defaults, then the caller's, then what we own. */
  connectionOptions(
    local: TcpAddress,
    remote: TcpAddress,
    extra: Partial<TcpConnectionOptions>,
    now: number,
  ): TcpConnectionOptions {
    return {
      ...this.defaults,
      ...extra,
      local,
      remote,
      iss: extra.iss ?? this.isn.isn(local, remote, now),
      mss: Math.min(extra.mss ?? this.defaults.mss ?? Number.POSITIVE_INFINITY, this.mssFor(remote.addr)),
      // TSO: the link toward the peer cuts super-segments up to this many bytes.
      tsoMax: extra.tsoMax ?? this.ip.offloadsFor?.(remote.addr)?.tsoMax ?? 0,
      trace: this.connTrace,
      hostName: this.ip.name,
    };
  }

  // -------------------------------------------------------------------------------------
  // Active OPEN (RFC 9293 §3.10.1)

  /** Active open for an owner: choose the source address and port, send the SYN. */
  open(owner: TcbOwner, remote: TcpAddress, opts: TcpOpenOptions, now: number): Tcb | TcpSystemError {
    const ip = this.ip;
    let src = opts.localAddress;
    if (src !== undefined) {
      if (!ip.isLocalAddress(src)) return systemError('connect', 'EADDRNOTAVAIL', src, opts.localPort);
    } else {
      src = ip.sourceFor(remote.addr);
      if (src === undefined) return systemError('connect', 'ENETUNREACH', remote.addr, remote.port);
    }
    let port = opts.localPort ?? 0;
    if (port === 0) {
      const p = this.ephemeralPort(src, remote);
      if (p === undefined) return systemError('connect', 'EADDRNOTAVAIL', remote.addr, remote.port);
      port = p;
    } else if (this.conns.has(tupleKey(src, port, remote.addr, remote.port))) {
      return systemError('connect', 'EADDRINUSE', src, port);
    }
    const local = { addr: src, port };
    const extra: Partial<TcpConnectionOptions> = { ...opts.connection };
    let synData: Uint8Array | undefined;
    if (opts.fastOpen) {
      // RFC 7413 §4.1.3: with a cached cookie, data rides in the SYN; without one, the SYN
      // asks for a cookie and the data waits for the handshake.
      const cached = this.fastOpenCache.get(remote.addr);
      if (cached) {
        extra.fastOpen = { cookie: cached.cookie };
        synData = opts.takeSynData?.();
      } else {
        extra.fastOpen = {};
      }
    }
    const copts = this.connectionOptions(local, remote, extra, now);
    const conn = new TcpConnection(copts);
    const tcb = this.register(conn, remote.addr.includes(':') ? 6 : 4, copts);
    tcb.owner = owner;
    tcb.handle(conn.open(now, synData?.length ? synData : undefined), now);
    return tcb;
  }

  /** @internal */
  register(conn: TcpConnection, version: 4 | 6, opts: TcpConnectionOptions): Tcb {
    const key = tupleKey(conn.local.addr, conn.local.port, conn.remote.addr, conn.remote.port);
    const tcb = new Tcb(this, conn, key, version, opts.sendHighWater);
    this.conns.set(key, tcb);
    return tcb;
  }

  // -------------------------------------------------------------------------------------
  // A connection's output

  /** @internal Send a call's output (made at `now`), dispatch its events, ask for the next wake-up. */
  output(tcb: Tcb, out: TcpOutput, now: number): void {
    const segs = out.segments;
    const ecn = out.ecn;
    for (let i = 0; i < segs.length; i++) this.transmit(tcb, segs[i] as TcpSegment, ecn?.[i]);
    const evs = out.events;
    for (let i = 0; i < evs.length; i++) this.event(tcb, evs[i] as TcpEvent, now);
    if (!tcb.closed) {
      if (!tcb.timeWait && tcb.conn.state === 'TIME-WAIT') this.enterTimeWait(tcb, now);
      this.arm(tcb);
    }
  }

  private event(tcb: Tcb, e: TcpEvent, now: number): void {
    switch (e.type) {
      case 'closed':
        this.forget(tcb, now);
        break;
      case 'connected':
        if (tcb.queue === 'syn') this.promote(tcb, 'ESTABLISHED', now);
        break;
      case 'data-readable':
        // RFC 7413 §4.2: data that came in a SYN with a valid cookie may go to the
        // application before the handshake completes.
        if (tcb.queue === 'syn' && tcb.listener && !tcb.listener.acceptQueueFull) {
          this.promote(tcb, 'Fast Open data', now);
        } else if (!tcb.owner && !tcb.queue && !tcb.closed) {
          // Data for a connection nobody will read: reset it, as Linux does after close()
          // (RFC 9293 §3.10.7.4 leaves it to the host; RFC 2525 §2.17 asks for the RST).
          this.ip.counters.inc('tcp.orphan.reset');
          tcb.handle(tcb.conn.abort(now), now);
          return;
        }
        break;
      case 'fastopen-cookie':
        this.fastOpenCache.set(tcb.remote.addr, { cookie: e.cookie });
        this.ip.counters.inc('tcp.fastopen.cookie-cached');
        break;
      case 'fastopen-rejected':
        this.fastOpenCache.delete(tcb.remote.addr);
        this.ip.counters.inc('tcp.fastopen.cookie-rejected');
        break;
      default:
        break;
    }
    tcb.owner?.onTcpEvent(e, tcb);
  }

  private promote(tcb: Tcb, why: string, now: number): void {
    const l = tcb.listener;
    if (!l) return;
    l.promote(tcb, why, now);
    this.sink.acceptReady(l);
  }

  private enterTimeWait(tcb: Tcb, now: number): void {
    tcb.timeWait = true;
    this.timeWaitCount++;
    if (this.timeWaitCount > this.maxTimeWait) {
      // Linux "time wait bucket table overflow": the connection is forgotten at once.
      this.ip.counters.inc('tcp.timewait.overflow');
      this.forget(tcb, now);
    }
  }

  /** Drop a connection from the table (it reached CLOSED, or is given up). */
  private forget(tcb: Tcb, now: number): void {
    if (tcb.closed) return;
    tcb.closed = true;
    this.sink.cancelWake(tcb);
    tcb.wakeAt = undefined;
    if (tcb.timeWait) this.timeWaitCount--;
    if (this.conns.get(tcb.key) === tcb) this.conns.delete(tcb.key);
    if (tcb.listener) tcb.listener.remove(tcb, now);
  }

  /** The time the connection should next be woken at (its own timers, and the orphan FIN-WAIT-2 limit). */
  deadline(tcb: Tcb): number | undefined {
    if (tcb.closed) return undefined;
    let next = tcb.conn.nextTimeout();
    if (tcb.orphanSince !== undefined && tcb.conn.state === 'FIN-WAIT-2') {
      const fin = tcb.orphanSince + this.finTimeout;
      if (next === undefined || fin < next) next = fin;
    }
    return next;
  }

  /** @internal Ask the driver to wake the connection at its next deadline (unless an earlier wake-up is pending). */
  arm(tcb: Tcb): void {
    const next = this.deadline(tcb);
    if (next === undefined) return;
    if (tcb.wakeAt !== undefined && tcb.wakeAt <= next) return;
    tcb.wakeAt = next;
    this.sink.wake(tcb, next);
  }

  /** The driver's wake-up for a connection came: run what is due, or ask again for later. */
  onTimeout(tcb: Tcb, now: number): void {
    tcb.wakeAt = undefined;
    tcb.wakeHandle = undefined;
    if (tcb.closed) return;
    if (
      tcb.orphanSince !== undefined &&
      tcb.conn.state === 'FIN-WAIT-2' &&
      now >= tcb.orphanSince + this.finTimeout
    ) {
      // Linux tcp_fin_timeout: an orphan does not wait forever for a FIN that may never come.
      this.ip.counters.inc('tcp.orphan.fin-timeout');
      this.forget(tcb, now);
      return;
    }
    const due = tcb.conn.nextTimeout();
    if (due !== undefined && due <= now) tcb.handle(tcb.conn.onTimeout(now), now);
    else this.arm(tcb);
  }

  /**
   * The earliest deadline of any connection, for a driver (or a test) that keeps one timer
   * for the whole endpoint instead of one per connection; undefined when none is armed.
   */
  nextTimeout(): number | undefined {
    let next: number | undefined;
    for (const tcb of this.conns.values()) {
      const at = this.deadline(tcb);
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** Run every connection whose deadline has come (the one-timer form of onTimeout). */
  runDue(now: number): void {
    for (const tcb of [...this.conns.values()]) {
      const at = this.deadline(tcb);
      if (at !== undefined && at <= now) this.onTimeout(tcb, now);
    }
  }

  /** @internal The owner lets go; the connection finishes (or is reset) on its own. */
  orphan(tcb: Tcb, now: number): void {
    tcb.owner = undefined;
    tcb.orphanSince = now;
    this.arm(tcb);
  }

  private transmit(tcb: Tcb, seg: TcpSegment, ecn: number | undefined): void {
    if (seg.options.timestamps) tcb.timestamps = true;
    this.sink.transmit(tcb.conn.local.addr, tcb.conn.remote.addr, seg, tcb, ecn);
  }

  /**
   * A smaller path MTU: segments shrink to fit it (RFC 8201 §4, RFC 1191 §6.4). With
   * `resend` (an ICMP report, not the middle of sending) what was lost for being too big
   * goes again at once at the new size.
   */
  pathMtuDropped(tcb: Tcb, mtu: number, now: number, resend: boolean): void {
    const overhead = (tcb.version === 6 ? 60 : 40) + (tcb.timestamps ? 12 : 0);
    const before = tcb.conn.mss;
    const out = tcb.conn.setMss(mtu - overhead, resend ? now : undefined);
    if (tcb.conn.mss < before) {
      this.ip.counters.inc('tcp.pmtu.mss-lowered');
      this.traceLocal(now, `${tcb.key} path MTU ${mtu}: MSS -> ${tcb.conn.mss}`, 'RFC 8201 §4', {
        mtu,
        mss: tcb.conn.mss,
      });
    }
    if (resend) this.output(tcb, out, now);
  }

  // -------------------------------------------------------------------------------------
  // SEGMENT ARRIVES (RFC 9293 §3.10.7)

  receive(d: IpDelivery, now: number): void {
    const ip = this.ip;
    // RFC 1122 §4.2.3.10: a segment to a broadcast or multicast address is discarded
    // (and a SYN to one is never answered).
    if (!ip.isLocalAddress(d.dst)) {
      this.dropped(now, 'tcp.drop.not-unicast', `to ${d.dst}`, 'RFC 1122 §4.2.3.10');
      return;
    }
    let seg: TcpSegment;
    try {
      // A checksum the link verified ('valid') or that a sender on this machine left for
      // offload ('partial', incomplete by design) is not checked again (Linux likewise).
      if (d.csum === undefined) {
        // One pseudo-header object, refilled per segment: decodeSegment only sums it.
        const pseudo = this.pseudo;
        pseudo.src = d.srcBytes;
        pseudo.dst = d.dstBytes;
        seg = decodeSegment(d.payload, pseudo);
      } else {
        ip.counters.inc(d.csum === 'valid' ? 'tcp.rx.csum-valid' : 'tcp.rx.csum-partial');
        seg = decodeSegment(d.payload, d, NO_VERIFY);
      }
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      const counter = e.field === 'checksum' ? 'tcp.drop.checksum' : 'tcp.drop.malformed';
      this.dropped(now, counter, `from ${d.src}: ${e.message}`, 'RFC 9293 §3.1');
      return;
    }
    (this.rxCount ??= ip.counters.counter('tcp.rx')).value++;
    // One-entry cache in front of the table: a busy connection's segments come in runs.
    let tcb = this.lastTcb;
    if (
      tcb === undefined ||
      tcb.closed ||
      tcb.conn.local.port !== seg.dstPort ||
      tcb.conn.remote.port !== seg.srcPort ||
      tcb.conn.remote.addr !== d.src ||
      tcb.conn.local.addr !== d.dst
    ) {
      tcb = this.conns.get(tupleKey(d.dst, seg.dstPort, d.src, seg.srcPort));
      if (tcb) this.lastTcb = tcb;
    }
    if (tcb) {
      const conn = tcb.conn;
      const f = seg.flags;
      if (
        conn.state === 'TIME-WAIT' &&
        (f & (SYN | ACK | RST)) === SYN &&
        seqGt(seg.seq, conn.rcvNxt) &&
        this.findListener(d.version, d.dst, seg.dstPort)
      ) {
        // RFC 9293 §3.10.7.4 (via RFC 1122 §4.2.2.13) and RFC 6191: a new SYN beyond the
        // old connection's sequence space may open a new incarnation of the 4-tuple.
        ip.counters.inc('tcp.timewait.reuse');
        this.forget(tcb, now);
      } else {
        const l = tcb.listener;
        if (
          tcb.queue === 'syn' &&
          conn.state === 'SYN-RECEIVED' &&
          (f & (SYN | RST | ACK)) === ACK &&
          l?.acceptQueueFull
        ) {
          // The final ACK would complete a handshake the application has no room for: drop it
          // and let the peer retransmit (Linux with tcp_abort_on_overflow = 0).
          l.counts.acceptOverflows++;
          ip.counters.inc('tcp.listen.overflow');
          l.note(
            now,
            tcb,
            'final ACK dropped, accept queue full',
            'RFC 9293 §3.10.7.4',
            'tcp.listen.overflow',
          );
          return;
        }
        // The connection answers what it drops itself, rate-limited there (RFC 5961 §7).
        tcb.handle(conn.receive(seg, now, d.ecn), now);
        return;
      }
    }
    const l = this.findListener(d.version, d.dst, seg.dstPort);
    if (l) {
      listenerSegment(this, l, d, seg, now);
      return;
    }
    this.dropped(
      now,
      'tcp.drop.no-port',
      `${describeSegment(seg)} from ${d.src}:${seg.srcPort} to port ${seg.dstPort}`,
      RFC_RST,
    );
    this.reset(d, seg, now);
  }

  /** RFC 9293 §3.10.7.1: the RST for a segment no connection wants (never for a RST). */
  /** @internal */
  reset(d: IpDelivery, seg: TcpSegment, now: number): void {
    const rst = resetFor(seg);
    if (!rst) return;
    if (this.ip.trace.enabled) {
      this.ip.trace.emit({
        t: now,
        host: this.ip.name,
        layer: 'tcp',
        dir: 'out',
        summary: describeSegment(rst),
        fields: { srcPort: rst.srcPort, dstPort: rst.dstPort, seq: rst.seq, ack: rst.ack, flags: rst.flags },
        rfc: RFC_RST,
      });
    }
    this.send(d.dst, d.src, rst);
  }

  /** @internal A segment that belongs to no connection (a RST, a SYN cookie's SYN-ACK). */
  send(src: string, dst: string, seg: TcpSegment): void {
    this.sink.transmit(src, dst, seg, undefined, undefined);
  }

  /** @internal Run `fn` with the connections' trace muted. */
  quietly(fn: () => void): void {
    this.connTrace.muted = true;
    try {
      fn();
    } finally {
      this.connTrace.muted = false;
    }
  }

  findListener(version: 4 | 6, dst: string, port: number): TcpListener | undefined {
    const list = this.listeners.get(port);
    if (!list) return undefined;
    let wild: TcpListener | undefined;
    for (const l of list) {
      if (l.address === dst) return l;
      if (!wild && l.matches(version, dst)) wild = l;
    }
    return wild;
  }

  // -------------------------------------------------------------------------------------
  // ICMP (RFC 1122 §4.2.3.9, RFC 5927, RFC 5461)

  receiveIcmpError(e: IcmpErrorReport, now: number): void {
    const ip = this.ip;
    if (e.quoted.length < 8) {
      ip.counters.inc('tcp.icmp.malformed');
      return;
    }
    const q = e.quoted;
    // The first 8 bytes of the quoted TCP header: ports and sequence number (RFC 9293 §3.1).
    const srcPort = ((q[0] as number) << 8) | (q[1] as number);
    const dstPort = ((q[2] as number) << 8) | (q[3] as number);
    const seq =
      (((q[4] as number) << 24) | ((q[5] as number) << 16) | ((q[6] as number) << 8) | (q[7] as number)) >>>
      0;
    // The quoted segment is one we sent: its source is our end.
    const tcb = this.conns.get(tupleKey(e.src, srcPort, e.dst, dstPort));
    if (!tcb) {
      ip.counters.inc('tcp.icmp.no-connection');
      return;
    }
    const conn = tcb.conn;
    // RFC 5927 §4.1 (and RFC 5961's spirit): believe only errors about data in flight.
    if (!(seqLeq(conn.sndUna, seq) && seqLt(seq, conn.sndMax))) {
      this.dropped(
        now,
        'tcp.icmp.out-of-window',
        `ICMP ${e.kind} for seq ${seq} outside [${conn.sndUna}, ${conn.sndMax})`,
        'RFC 5927 §4.1',
      );
      return;
    }
    if (e.kind === 'packet-too-big') {
      ip.counters.inc('tcp.icmp.pmtu');
      // The IP layer has lowered its path MTU already; follow it.
      this.pathMtuDropped(tcb, e.mtu ?? ip.mtuFor(tcb.remote.addr), now, true);
      return;
    }
    const [code, hard] = classifyIcmp(e);
    if (hard && conn.state === 'SYN-SENT') {
      // RFC 1122 §4.2.3.9: a hard error aborts a connection attempt; RFC 5461 §4.1 keeps
      // it to the attempt (a synchronized connection is never aborted by ICMP).
      ip.counters.inc('tcp.icmp.hard');
      const err = systemError('connect', code, tcb.remote.addr, tcb.remote.port);
      err.icmp = { kind: e.kind, code: e.code, reporter: e.reporter };
      tcb.hardError = err;
      this.traceLocal(
        now,
        `${tcb.key} ICMP ${e.kind} code ${e.code} from ${e.reporter}: ${code}, connection attempt aborted`,
        'RFC 1122 §4.2.3.9',
        { errno: code },
      );
      tcb.handle(conn.abort(now), now);
      return;
    }
    ip.counters.inc('tcp.icmp.soft');
    tcb.softError = code;
    this.traceLocal(
      now,
      `${tcb.key} ICMP ${e.kind} code ${e.code} from ${e.reporter}: ${code} (soft)`,
      'RFC 5461 §4',
      { errno: code },
    );
  }

  /**
   * Forget every connection and listener at once, sending nothing (for tearing a
   * simulation or a TUN session down; owners see no further events).
   */
  shutdown(now: number): void {
    for (const tcb of [...this.conns.values()]) {
      tcb.owner = undefined;
      this.forget(tcb, now);
    }
    for (const list of [...this.listeners.values()]) for (const l of [...list]) this.unlisten(l, now);
  }

  // -------------------------------------------------------------------------------------
  // Inspection

  get stats(): TcpEndpointStats {
    const byState: Partial<Record<TcpState, number>> = {};
    for (const t of this.conns.values()) byState[t.conn.state] = (byState[t.conn.state] ?? 0) + 1;
    const listeners: TcpListenerStats[] = [];
    for (const list of this.listeners.values()) for (const l of list) listeners.push(l.stats);
    let sendBuffered = 0;
    let receiveBuffered = 0;
    for (const t of this.conns.values()) {
      sendBuffered += t.conn.sendQueued;
      receiveBuffered += t.conn.readable;
    }
    return { connections: this.conns.size, byState, listeners, sendBuffered, receiveBuffered };
  }

  /** Every connection in the table (TIME-WAIT included), for the CLI and tests. */
  connections(): TcpConnection[] {
    return [...this.conns.values()].map((t) => t.conn);
  }

  /** @internal */
  dropped(now: number, counter: string, detail: string, rfc: string): void {
    const ip = this.ip;
    countDrop(ip.counters, ip.trace, counter, () => ({
      t: now,
      host: ip.name,
      layer: 'tcp',
      summary: `dropped: ${detail}`,
      rfc,
    }));
  }

  private traceLocal(now: number, summary: string, rfc: string, fields: Record<string, unknown>): void {
    const ip = this.ip;
    if (!ip.trace.enabled) return;
    ip.trace.emit({ t: now, host: ip.name, layer: 'tcp', dir: 'local', summary, fields, rfc });
  }
}

const NO_VERIFY = { verifyChecksum: false } as const;
const NO_ADDRESS = new Uint8Array(0);
