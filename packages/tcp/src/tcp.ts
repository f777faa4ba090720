import {
  classifyIcmp,
  type IcmpErrorReport,
  IPPROTO_TCP,
  type IpDelivery,
  type IpProtocolHandler,
  type IpStack,
} from '@stepwire/ip';
import {
  chooseEphemeralPort,
  countDrop,
  ParseError,
  seqGt,
  seqLeq,
  seqLt,
  type Timer,
  TimerGroup,
  TraceBus,
  type TraceEvent,
} from '@stepwire/wire';
import {
  resetFor,
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEndpoint,
  type TcpEvent,
  type TcpOutput,
  type TcpState,
  timestampOffset,
  USER_SEND_STATES,
  windowShiftFor,
} from './connection/index.ts';
import { systemError, type TcpErrorCode, type TcpSystemError } from './errors.ts';
import { FastOpenCache, FastOpenKeys } from './fastopen.ts';
import { IsnGenerator } from './isn.ts';
import { TcpListener, type TcpListenerStats, type TcpListenOptions } from './listener.ts';
import type { TcpOptions } from './options.ts';
import {
  ACK,
  CWR,
  decodeSegment,
  describeSegment,
  ECE,
  encodeSegment,
  FIN,
  RST,
  SYN,
  type TcpSegment,
} from './segment.ts';
import { TcpServer, type TcpServerOptions } from './server.ts';
import { type TcpConnectOptions, TcpSocket } from './socket.ts';
import { SynCookies } from './syncookie.ts';

/** Connection options a Tcp applies to every connection unless a socket or listener says otherwise. */
export type TcpConnectionDefaults = Partial<
  Omit<TcpConnectionOptions, 'local' | 'remote' | 'iss' | 'trace' | 'hostName' | 'fastOpenServer'>
>;

export interface TcpStackOptions {
  connection?: TcpConnectionDefaults;
  /** Secret of the RFC 6528 ISN function; random by default. */
  isnSecret?: Uint8Array;
  /** Secret of the SYN cookie hash (RFC 4987 §3.6); random by default. */
  synCookieSecret?: Uint8Array;
  /** Key of the Fast Open cookie MAC (RFC 7413 §4.1.2); random by default. */
  fastOpenKey?: Uint8Array;
  /** Most connections kept in TIME-WAIT (Linux tcp_max_tw_buckets); beyond that a closing
   *  connection skips TIME-WAIT. Default 32768. */
  maxTimeWait?: number;
  /** How long a connection its socket gave up on may sit in FIN-WAIT-2 (Linux tcp_fin_timeout). Default 60 s. */
  finTimeout?: number;
  /** Ephemeral port range, inclusive (RFC 6335 §6 by default: 49152-65535). */
  ephemeralPorts?: [number, number];
}

/** Who hears a connection's events: a socket, until it lets go (then the connection is an orphan). */
export interface TcbOwner {
  onTcpEvent(e: TcpEvent, tcb: Tcb): void;
}

/**
 * The driver's record of one connection (a "transmission control block" in RFC 9293 §3.3.1
 * terms, wrapped around the sans-I/O TcpConnection): its 4-tuple, its one timer, who owns
 * it, and what ICMP said about it.
 */
export class Tcb {
  owner: TcbOwner | undefined;
  /** @internal */ listener: TcpListener | undefined;
  /** @internal */ queue: 'syn' | 'accept' | undefined;
  /** The last soft ICMP error (RFC 1122 §4.2.3.9), reported if the connection times out. */
  softError: TcpErrorCode | undefined;
  /** A hard error that ended the connection (reported instead of the connection's own). */
  hardError: TcpSystemError | undefined;
  /** @internal Segments carry timestamps (12 option bytes, counted when the path MTU drops). */
  timestamps = false;
  closed = false;
  /** @internal */ timeWait = false;
  /** @internal When the owner let go (for the FIN-WAIT-2 timeout of orphans). */
  orphanSince: number | undefined;
  /** @internal When an ACK last answered a dropped segment (see Tcp.limitInvalidAck). */
  lastInvalidAck: number | undefined;
  /** @internal */ timer: Timer | undefined;
  /** @internal */ timerAt: number | undefined;
  /** The connection's sendHighWater: above it, it reports 'writable' when it drains. */
  readonly sendHighWater: number;

  constructor(
    readonly tcp: Tcp,
    readonly conn: TcpConnection,
    readonly key: string,
    readonly version: 4 | 6,
    sendHighWater: number | undefined,
  ) {
    this.sendHighWater = sendHighWater ?? 256 * 1024;
  }

  get local(): TcpEndpoint {
    return this.conn.local;
  }

  get remote(): TcpEndpoint {
    return this.conn.remote;
  }

  /** Send a call's output, dispatch its events and re-arm the timer. */
  handle(out: TcpOutput): void {
    this.tcp.output(this, out);
  }
}

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
/** Linux net.ipv4.tcp_invalid_ratelimit. */
const INVALID_ACK_INTERVAL = 500;
const EMPTY = new Uint8Array(0);

export function tupleKey(
  localAddr: string,
  localPort: number,
  remoteAddr: string,
  remotePort: number,
): string {
  return `${localAddr}|${localPort}|${remoteAddr}|${remotePort}`;
}

export interface TcpStats {
  connections: number;
  byState: Partial<Record<TcpState, number>>;
  listeners: TcpListenerStats[];
  /** Timers armed by this stack's TCP (connections, listeners, socket idle timers). */
  timersArmed: number;
  /** Bytes held for the peer (queued or in flight) and for the application (unread). */
  sendBuffered: number;
  receiveBuffered: number;
}

/**
 * TCP for one host: the IP protocol handler for protocol 6 and the driver of every
 * TcpConnection on it.
 *
 * - Segments are decoded with the pseudo-header (RFC 9293 §3.1) and demultiplexed by
 *   4-tuple first, then to a listener on (address, port) or the wildcard (RFC 9293 §3.9.1
 *   leaves the choice of the most specific match to the host; Linux does the same).
 * - Each connection has one timer on the stack's Clock, armed from nextTimeout() after
 *   every call into it. A timer set for a later deadline is left alone when the deadline
 *   moves out (it fires early and is re-armed), so a busy connection does not cancel and
 *   create a timer per ACK.
 * - Segments for no connection and no listener get a RST (RFC 9293 §3.10.7.1).
 * - ICMP errors go to the connection they quote (RFC 5927 §4.1: only when the quoted
 *   sequence number is in flight), hard/soft per RFC 1122 §4.2.3.9 and RFC 5461; a
 *   packet-too-big lowers the MSS (RFC 8201, RFC 1191).
 * - Ephemeral ports per RFC 6056 §3.3.1 with the stack's seeded Prng.
 * - TIME-WAIT connections stay in the table until their 2*MSL ends (RFC 9293 §3.10.8);
 *   a new SYN with a higher sequence number may reuse the 4-tuple (RFC 9293 §3.10.7.4,
 *   RFC 6191), as Linux allows.
 *
 * Counters (on the stack): 'tcp.rx', 'tcp.tx', 'tcp.drop.checksum', 'tcp.drop.malformed',
 * 'tcp.drop.not-unicast', 'tcp.drop.no-port', 'tcp.rst.sent', 'tcp.listen.overflow',
 * 'tcp.listen.syn-drop', 'tcp.listen.bad-ack', 'tcp.listen.rst', 'tcp.listen.no-syn',
 * 'tcp.syncookie.sent', 'tcp.syncookie.valid', 'tcp.syncookie.invalid', 'tcp.icmp.hard',
 * 'tcp.icmp.soft', 'tcp.icmp.pmtu', 'tcp.icmp.no-connection', 'tcp.icmp.out-of-window',
 * 'tcp.icmp.malformed', 'tcp.tx.error', 'tcp.timewait.reuse', 'tcp.timewait.overflow',
 * 'tcp.orphan.reset', 'tcp.orphan.fin-timeout', 'tcp.fastopen.cookie-cached', 'tcp.fastopen.cookie-rejected',
 * 'tcp.invalid-ack.limited', 'tcp.tx.fragmented'.
 */
export class Tcp implements IpProtocolHandler {
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
  /** Every timer this TCP arms goes through here, so `stats.timersArmed` shows them all. */
  readonly timers: TimerGroup;
  private readonly maxTimeWait: number;
  private readonly finTimeout: number;
  private readonly portMin: number;
  private readonly portMax: number;
  private timeWaitCount = 0;
  private lastTcb: Tcb | undefined;
  private readonly connTrace: GatedTrace;

  constructor(
    readonly stack: IpStack,
    options: TcpStackOptions = {},
  ) {
    this.defaults = options.connection ?? {};
    this.isn = new IsnGenerator(options.isnSecret);
    this.synCookies = new SynCookies(options.synCookieSecret);
    this.fastOpenKeys = new FastOpenKeys(options.fastOpenKey);
    this.maxTimeWait = options.maxTimeWait ?? 32768;
    this.finTimeout = options.finTimeout ?? 60_000;
    [this.portMin, this.portMax] = options.ephemeralPorts ?? [49152, 65535];
    this.connTrace = new GatedTrace(stack.trace);
    this.timers = new TimerGroup(stack.clock);
    stack.registerProtocol(IPPROTO_TCP, this);
  }

  // -------------------------------------------------------------------------------------
  // Node-shaped API

  /** Like net.connect / net.createConnection. */
  connect(options: TcpConnectOptions, onConnect?: () => void): TcpSocket;
  connect(port: number, host?: string, onConnect?: () => void): TcpSocket;
  connect(a: TcpConnectOptions | number, b?: string | (() => void), c?: () => void): TcpSocket {
    let opts: TcpConnectOptions;
    let cb: (() => void) | undefined;
    if (typeof a === 'number') {
      opts = { port: a, ...(typeof b === 'string' ? { host: b } : {}) };
      cb = typeof b === 'function' ? b : c;
    } else {
      opts = a;
      cb = typeof b === 'function' ? b : c;
    }
    const s = new TcpSocket(this, { allowHalfOpen: opts.allowHalfOpen ?? false });
    s.connect(opts, cb);
    return s;
  }

  /** Same as connect (net.createConnection). */
  createConnection(options: TcpConnectOptions, onConnect?: () => void): TcpSocket {
    return this.connect(options, onConnect);
  }

  /** Like net.createServer. */
  createServer(
    options?: TcpServerOptions | ((s: TcpSocket) => void),
    onConnection?: (s: TcpSocket) => void,
  ): TcpServer {
    if (typeof options === 'function') return new TcpServer(this, {}, options);
    return new TcpServer(this, options ?? {}, onConnection);
  }

  // -------------------------------------------------------------------------------------
  // Listening and connecting (used by TcpServer and TcpSocket)

  /** Open a listener, or return EADDRINUSE / EADDRNOTAVAIL as a Node-shaped error. */
  listen(opts: TcpListenOptions): TcpListener | TcpSystemError {
    const any = opts.address === '0.0.0.0' || opts.address === '::';
    if (!any && !this.stack.isLocalAddress(opts.address)) {
      return systemError('listen', 'EADDRNOTAVAIL', opts.address, opts.port);
    }
    const l = new TcpListener(this.stack, opts, this.timers);
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
    l.note(undefined, 'LISTEN', 'RFC 9293 §3.10.1');
    return l;
  }

  /** Close a listener: connections it had not handed to the application are reset. */
  unlisten(l: TcpListener): void {
    if (l.closed) return;
    l.closed = true;
    const list = this.listeners.get(l.port);
    if (list) {
      const i = list.indexOf(l);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.listeners.delete(l.port);
    }
    const now = this.stack.clock.now();
    for (const tcb of [...l.synQueue.values(), ...l.acceptQueue]) {
      l.remove(tcb);
      if (!tcb.closed) tcb.handle(tcb.conn.abort(now));
    }
    l.note(undefined, 'closed', 'RFC 9293 §3.10.4');
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
    let port = this.portMin + this.stack.prng.int(0, n - 1);
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
  private ephemeralPort(src: string, remote: TcpEndpoint): number | undefined {
    return chooseEphemeralPort(
      this.stack.prng,
      this.portMin,
      this.portMax,
      (port) => !this.listeners.has(port) && !this.conns.has(tupleKey(src, port, remote.addr, remote.port)),
    );
  }

  /** The MSS to advertise toward `dst`: the path MTU less the IP and TCP headers (RFC 9293 §3.7.1). */
  mssFor(dst: string): number {
    const v6 = dst.includes(':');
    return Math.max(64, this.stack.mtuFor(dst) - (v6 ? 60 : 40));
  }

  /** The options of a connection: the stack's defaults, then the caller's, then what we own. */
  connectionOptions(
    local: TcpEndpoint,
    remote: TcpEndpoint,
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
      trace: this.connTrace,
      hostName: this.stack.name,
    };
  }

  /** Active open for a socket: choose the source address and port, send the SYN. */
  open(
    owner: TcbOwner,
    remote: TcpEndpoint,
    opts: {
      localAddress?: string;
      localPort?: number;
      connection?: Partial<TcpConnectionOptions>;
      fastOpen?: boolean;
      /** Bytes for the SYN when a Fast Open cookie is cached; returned unsent otherwise. */
      takeSynData?: () => Uint8Array | undefined;
    },
  ): Tcb | TcpSystemError {
    const stack = this.stack;
    let src = opts.localAddress;
    if (src !== undefined) {
      if (!stack.isLocalAddress(src)) return systemError('connect', 'EADDRNOTAVAIL', src, opts.localPort);
    } else {
      src = stack.sourceFor(remote.addr);
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
    const now = stack.clock.now();
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
    tcb.handle(conn.open(now, synData?.length ? synData : undefined));
    return tcb;
  }

  private register(conn: TcpConnection, version: 4 | 6, opts: TcpConnectionOptions): Tcb {
    const key = tupleKey(conn.local.addr, conn.local.port, conn.remote.addr, conn.remote.port);
    const tcb = new Tcb(this, conn, key, version, opts.sendHighWater);
    this.conns.set(key, tcb);
    return tcb;
  }

  // -------------------------------------------------------------------------------------
  // Driving connections

  /** @internal */
  output(tcb: Tcb, out: TcpOutput): void {
    const segs = out.segments;
    const ecn = out.ecn;
    for (let i = 0; i < segs.length; i++) this.transmit(tcb, segs[i]!, ecn?.[i]);
    const evs = out.events;
    for (let i = 0; i < evs.length; i++) this.event(tcb, evs[i]!);
    if (!tcb.closed) {
      if (!tcb.timeWait && tcb.conn.state === 'TIME-WAIT') this.enterTimeWait(tcb);
      this.arm(tcb);
    }
  }

  private event(tcb: Tcb, e: TcpEvent): void {
    switch (e.type) {
      case 'closed':
        this.forget(tcb);
        break;
      case 'connected':
        if (tcb.queue === 'syn') tcb.listener?.promote(tcb, 'ESTABLISHED');
        break;
      case 'data-readable':
        // RFC 7413 §4.2: data that came in a SYN with a valid cookie may go to the
        // application before the handshake completes.
        if (tcb.queue === 'syn' && tcb.listener && !tcb.listener.acceptQueueFull) {
          tcb.listener.promote(tcb, 'Fast Open data');
        } else if (!tcb.owner && !tcb.queue && !tcb.closed) {
          // Data for a connection nobody will read: reset it, as Linux does after close()
          // (RFC 9293 §3.10.7.4 leaves it to the host; RFC 2525 §2.17 asks for the RST).
          this.stack.counters.inc('tcp.orphan.reset');
          tcb.handle(tcb.conn.abort(this.stack.clock.now()));
          return;
        }
        break;
      case 'fastopen-cookie':
        this.fastOpenCache.set(tcb.remote.addr, { cookie: e.cookie });
        this.stack.counters.inc('tcp.fastopen.cookie-cached');
        break;
      case 'fastopen-rejected':
        this.fastOpenCache.delete(tcb.remote.addr);
        this.stack.counters.inc('tcp.fastopen.cookie-rejected');
        break;
      default:
        break;
    }
    tcb.owner?.onTcpEvent(e, tcb);
  }

  private enterTimeWait(tcb: Tcb): void {
    tcb.timeWait = true;
    this.timeWaitCount++;
    if (this.timeWaitCount > this.maxTimeWait) {
      // Linux "time wait bucket table overflow": the connection is forgotten at once.
      this.stack.counters.inc('tcp.timewait.overflow');
      this.forget(tcb);
    }
  }

  /** Drop a connection from the table (it reached CLOSED, or is given up). */
  private forget(tcb: Tcb): void {
    if (tcb.closed) return;
    tcb.closed = true;
    tcb.timer?.cancel();
    tcb.timer = undefined;
    tcb.timerAt = undefined;
    if (tcb.timeWait) this.timeWaitCount--;
    if (this.conns.get(tcb.key) === tcb) this.conns.delete(tcb.key);
    if (tcb.listener) tcb.listener.remove(tcb);
  }

  /** @internal Arm the connection's one timer for its next deadline. */
  arm(tcb: Tcb): void {
    if (tcb.closed) return;
    let next = tcb.conn.nextTimeout();
    if (tcb.orphanSince !== undefined && tcb.conn.state === 'FIN-WAIT-2') {
      const fin = tcb.orphanSince + this.finTimeout;
      if (next === undefined || fin < next) next = fin;
    }
    if (next === undefined) return;
    if (tcb.timer && tcb.timerAt !== undefined && tcb.timerAt <= next) return;
    tcb.timer?.cancel();
    tcb.timerAt = next;
    tcb.timer = this.timers.setTimer(next, () => this.fire(tcb));
  }

  private fire(tcb: Tcb): void {
    tcb.timer = undefined;
    tcb.timerAt = undefined;
    if (tcb.closed) return;
    const now = this.stack.clock.now();
    if (
      tcb.orphanSince !== undefined &&
      tcb.conn.state === 'FIN-WAIT-2' &&
      now >= tcb.orphanSince + this.finTimeout
    ) {
      // Linux tcp_fin_timeout: an orphan does not wait forever for a FIN that may never come.
      this.stack.counters.inc('tcp.orphan.fin-timeout');
      this.forget(tcb);
      return;
    }
    const due = tcb.conn.nextTimeout();
    if (due !== undefined && due <= now) tcb.handle(tcb.conn.onTimeout(now));
    else this.arm(tcb);
  }

  /** @internal The socket lets go; the connection finishes (or is reset) on its own. */
  orphan(tcb: Tcb): void {
    tcb.owner = undefined;
    tcb.orphanSince = this.stack.clock.now();
    this.arm(tcb);
  }

  private transmit(tcb: Tcb, seg: TcpSegment, ecn: number | undefined): void {
    if (seg.options.timestamps) tcb.timestamps = true;
    const src = tcb.conn.local.addr;
    const dst = tcb.conn.remote.addr;
    this.sendSegment(src, dst, seg, tcb, ecn);
  }

  private sendSegment(src: string, dst: string, seg: TcpSegment, tcb?: Tcb, ecn?: number): void {
    const stack = this.stack;
    const bytes = encodeSegment(seg, { src, dst });
    // RFC 8201 / RFC 1191: segments go with DF, and the MSS follows the path MTU.
    // RFC 3168 §6.1.1: the connection says which segments are ECN-capable.
    let r = stack.send({ src, dst, protocol: IPPROTO_TCP, payload: bytes, dontFragment: true, ecn });
    stack.counters.inc('tcp.tx');
    if (seg.flags & RST) stack.counters.inc('tcp.rst.sent');
    if (!r.ok && r.error === 'too-big') {
      // Too big for the path: future segments shrink to the MTU; this one must not be lost
      // (a retransmission of the same bytes would be just as big), so IP fragments it.
      if (r.mtu !== undefined && tcb) this.pathMtuDropped(tcb, r.mtu);
      stack.counters.inc('tcp.tx.fragmented');
      r = stack.send({ src, dst, protocol: IPPROTO_TCP, payload: bytes, dontFragment: false, ecn });
    }
    if (!r.ok) stack.counters.inc('tcp.tx.error');
  }

  /**
   * A smaller path MTU: segments shrink to fit it (RFC 8201 §4, RFC 1191 §6.4). With `now`
   * (an ICMP report, not the middle of sending) what was lost for being too big goes again
   * at once at the new size.
   */
  private pathMtuDropped(tcb: Tcb, mtu: number, now?: number): void {
    const overhead = (tcb.version === 6 ? 60 : 40) + (tcb.timestamps ? 12 : 0);
    const before = tcb.conn.mss;
    const out = tcb.conn.setMss(mtu - overhead, now);
    if (tcb.conn.mss < before) {
      this.stack.counters.inc('tcp.pmtu.mss-lowered');
      this.traceLocal(`${tcb.key} path MTU ${mtu}: MSS -> ${tcb.conn.mss}`, 'RFC 8201 §4', {
        mtu,
        mss: tcb.conn.mss,
      });
    }
    if (now !== undefined) this.output(tcb, out);
  }

  // -------------------------------------------------------------------------------------
  // IP protocol handler

  receive(d: IpDelivery): void {
    const stack = this.stack;
    // RFC 1122 §4.2.3.10: a segment to a broadcast or multicast address is discarded
    // (and a SYN to one is never answered).
    if (!stack.isLocalAddress(d.dst)) {
      this.dropped('tcp.drop.not-unicast', `to ${d.dst}`, 'RFC 1122 §4.2.3.10');
      return;
    }
    let seg: TcpSegment;
    try {
      seg = decodeSegment(d.payload, d);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      const counter = e.field === 'checksum' ? 'tcp.drop.checksum' : 'tcp.drop.malformed';
      this.dropped(counter, `from ${d.src}: ${e.message}`, 'RFC 9293 §3.1');
      return;
    }
    stack.counters.inc('tcp.rx');
    const now = stack.clock.now();
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
        stack.counters.inc('tcp.timewait.reuse');
        this.forget(tcb);
      } else {
        if (
          tcb.queue === 'syn' &&
          conn.state === 'SYN-RECEIVED' &&
          (f & (SYN | RST | ACK)) === ACK &&
          tcb.listener?.acceptQueueFull
        ) {
          // The final ACK would complete a handshake the application has no room for: drop it
          // and let the peer retransmit (Linux with tcp_abort_on_overflow = 0).
          const l = tcb.listener;
          l.counts.acceptOverflows++;
          stack.counters.inc('tcp.listen.overflow');
          l.note(tcb, 'final ACK dropped, accept queue full', 'RFC 9293 §3.10.7.4', 'tcp.listen.overflow');
          return;
        }
        const droppedBefore = conn.counters.dropped;
        const out = conn.receive(seg, now, d.ecn);
        if (conn.counters.dropped !== droppedBefore) this.limitInvalidAck(tcb, seg, out, now);
        tcb.handle(out);
        return;
      }
    }
    const l = this.findListener(d.version, d.dst, seg.dstPort);
    if (l) {
      this.listenerSegment(l, d, seg, now);
      return;
    }
    this.dropped(
      'tcp.drop.no-port',
      `${describeSegment(seg)} from ${d.src}:${seg.srcPort} to port ${seg.dstPort}`,
      RFC_RST,
    );
    this.reset(d, seg);
  }

  /**
   * The connection dropped a segment and answers with an ACK (an unacceptable sequence
   * number, an ACK of unsent data, PAWS: RFC 9293 §3.10.7.4, RFC 5961 §5.2, RFC 7323 §5.3).
   * Two ends that disagree about the sequence space would answer each other's answers
   * forever, an ACK storm (RFC 5961 §5 notes it). Like Linux (tcp_oow_rate_limited,
   * net.ipv4.tcp_invalid_ratelimit = 500 ms), such ACKs for segments without data go out
   * at most once per 500 ms per connection; data segments always get theirs (fast
   * retransmit counts on duplicate ACKs). Where the connection machine limits some of these
   * itself, this is a second line that costs one comparison.
   */
  private limitInvalidAck(tcb: Tcb, seg: TcpSegment, out: TcpOutput, now: number): void {
    if (seg.payload.length > 0 || seg.flags & (SYN | FIN)) return;
    const segs = out.segments;
    if (segs.length !== 1) return;
    const ack = segs[0]!;
    if (ack.flags !== ACK || ack.payload.length > 0) return;
    if (tcb.lastInvalidAck !== undefined && now - tcb.lastInvalidAck < INVALID_ACK_INTERVAL) {
      segs.length = 0;
      this.stack.counters.inc('tcp.invalid-ack.limited');
      return;
    }
    tcb.lastInvalidAck = now;
  }

  /** RFC 9293 §3.10.7.1: the RST for a segment no connection wants (never for a RST). */
  private reset(d: IpDelivery, seg: TcpSegment): void {
    const rst = resetFor(seg);
    if (!rst) return;
    if (this.stack.trace.enabled) {
      this.stack.trace.emit({
        t: this.stack.clock.now(),
        host: this.stack.name,
        layer: 'tcp',
        dir: 'out',
        summary: describeSegment(rst),
        fields: { srcPort: rst.srcPort, dstPort: rst.dstPort, seq: rst.seq, ack: rst.ack, flags: rst.flags },
        rfc: RFC_RST,
      });
    }
    this.sendSegment(d.dst, d.src, rst);
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

  /** SEGMENT ARRIVES in LISTEN (RFC 9293 §3.10.7.2), with SYN cookies and the queues. */
  private listenerSegment(l: TcpListener, d: IpDelivery, seg: TcpSegment, now: number): void {
    const stack = this.stack;
    const f = seg.flags;
    if (f & RST) {
      this.dropped('tcp.listen.rst', `RST from ${d.src}:${seg.srcPort}`, 'RFC 9293 §3.10.7.2');
      return;
    }
    const local = { addr: d.dst, port: seg.dstPort };
    const remote = { addr: d.src, port: seg.srcPort };
    if (f & ACK) {
      if (!(f & SYN) && l.synCookies && now - l.lastCookieAt < 2 * 64_000) {
        if (this.cookieAck(l, d, seg, local, remote, now)) return;
      }
      this.dropped(
        'tcp.listen.bad-ack',
        `ACK without a connection from ${d.src}:${seg.srcPort}`,
        'RFC 9293 §3.10.7.2',
      );
      this.reset(d, seg);
      return;
    }
    if (!(f & SYN)) {
      this.dropped(
        'tcp.listen.no-syn',
        `${describeSegment(seg)} from ${d.src}:${seg.srcPort}`,
        'RFC 9293 §3.10.7.2',
      );
      return;
    }
    if (l.acceptQueueFull) {
      l.counts.synDropped++;
      stack.counters.inc('tcp.listen.overflow');
      stack.counters.inc('tcp.listen.syn-drop');
      l.note(
        undefined,
        `SYN from ${d.src}:${seg.srcPort} dropped, accept queue full`,
        'RFC 9293 §3.10.7.2',
        'tcp.listen.syn-drop',
      );
      return;
    }
    const extra: Partial<TcpConnectionOptions> = { ...l.connection };
    if (l.synQueueFull) {
      if (l.synCookies) {
        this.sendCookie(l, d, seg, local, remote, extra, now);
        return;
      }
      l.counts.synDropped++;
      stack.counters.inc('tcp.listen.syn-drop');
      l.note(
        undefined,
        `SYN from ${d.src}:${seg.srcPort} dropped, SYN queue full`,
        'RFC 4987 §3.1',
        'tcp.listen.syn-drop',
      );
      return;
    }
    if (l.fastOpen) extra.fastOpenServer = this.fastOpenKeys.serverFor(d.src);
    const opts = this.connectionOptions(local, remote, extra, now);
    const conn = new TcpConnection(opts);
    const tcb = this.register(conn, d.version, opts);
    l.addSynReceived(tcb);
    conn.listen(now);
    tcb.handle(conn.receive(seg, now));
  }

  /** RFC 4987 §3.6: answer a SYN statelessly, the connection's state encoded in our ISS. */
  private sendCookie(
    l: TcpListener,
    d: IpDelivery,
    seg: TcpSegment,
    local: TcpEndpoint,
    remote: TcpEndpoint,
    extra: Partial<TcpConnectionOptions>,
    now: number,
  ): void {
    const opts = this.connectionOptions(local, remote, extra, now);
    const peerMss = seg.options.mss ?? (d.version === 6 ? 1220 : 536);
    const iss = this.synCookies.encode(local, remote, seg.seq, peerMss, now);
    const rcvBuf = Math.max(1, opts.receiveBuffer ?? 256 * 1024);
    // The MSS is in the cookie; with timestamps the other options ride in our TSval's low
    // bits (see syncookie.ts), offered in the same order and form as a SYN-ACK of a
    // connection would (connection/segments.ts sendSyn). Without timestamps, only the MSS.
    const options: TcpOptions = { mss: opts.mss ?? 1460 };
    const peer = seg.options;
    let ecn = false;
    if ((opts.timestamps ?? true) && peer.timestamps) {
      const sackPermitted = (opts.sack ?? true) && peer.sackPermitted === true;
      const ws = (opts.windowScale ?? true) && peer.windowScale !== undefined;
      // RFC 3168 §6.1.1: an ECN-setup SYN is agreed to (unless ECN is refused), and the
      // agreement kept in the TSval as Linux keeps it.
      ecn = opts.ecn !== false && (seg.flags & (ECE | CWR)) === (ECE | CWR);
      if (sackPermitted) options.sackPermitted = true;
      const tsNow = (Math.floor(now) + timestampOffset(iss)) >>> 0;
      options.timestamps = {
        value: SynCookies.timestamp(tsNow, {
          ...(ws ? { windowScale: peer.windowScale } : {}),
          sackPermitted,
          ecn,
        }),
        echo: peer.timestamps.value,
      };
      if (ws) options.windowScale = windowShiftFor(rcvBuf);
    }
    const synAck: TcpSegment = {
      srcPort: local.port,
      dstPort: remote.port,
      seq: iss,
      ack: (seg.seq + 1) >>> 0,
      flags: SYN | ACK | (ecn ? ECE : 0),
      window: Math.min(0xffff, rcvBuf),
      urgentPointer: 0,
      options,
      payload: EMPTY,
    };
    l.lastCookieAt = now;
    l.counts.synCookiesSent++;
    this.stack.counters.inc('tcp.syncookie.sent');
    l.note(undefined, `SYN queue full: SYN cookie to ${remote.addr}:${remote.port}`, 'RFC 4987 §3.6');
    if (this.stack.trace.enabled) {
      this.stack.trace.emit({
        t: now,
        host: this.stack.name,
        layer: 'tcp',
        dir: 'out',
        summary: describeSegment(synAck),
        fields: {
          srcPort: synAck.srcPort,
          dstPort: synAck.dstPort,
          seq: iss,
          ack: synAck.ack,
          syncookie: true,
        },
        rfc: 'RFC 4987 §3.6',
      });
    }
    this.sendSegment(d.dst, d.src, synAck);
  }

  /** An ACK for a listener: is it the answer to one of our SYN cookies? */
  private cookieAck(
    l: TcpListener,
    d: IpDelivery,
    seg: TcpSegment,
    local: TcpEndpoint,
    remote: TcpEndpoint,
    now: number,
  ): boolean {
    const clientIsn = (seg.seq - 1) >>> 0;
    const cookie = (seg.ack - 1) >>> 0;
    const mss = this.synCookies.validate(local, remote, clientIsn, cookie, now);
    if (mss === undefined) {
      l.counts.synCookiesRejected++;
      this.stack.counters.inc('tcp.syncookie.invalid');
      return false;
    }
    const opts = this.connectionOptions(local, remote, { ...l.connection, iss: cookie }, now);
    // With timestamps, the echo of our cookie TSval holds the SYN's other options.
    const synOptions: TcpOptions = { mss };
    let synFlags = SYN;
    const ts = seg.options.timestamps;
    if (ts && (opts.timestamps ?? true)) {
      const o = SynCookies.optionsFrom(ts.echo);
      if (o.sackPermitted) synOptions.sackPermitted = true;
      if (o.ecn) synFlags |= ECE | CWR; // the SYN asked for ECN and the cookie agreed
      synOptions.timestamps = { value: ts.value, echo: 0 };
      if (o.windowScale !== undefined) synOptions.windowScale = o.windowScale;
    }
    if (l.acceptQueueFull) {
      l.counts.acceptOverflows++;
      this.stack.counters.inc('tcp.listen.overflow');
      l.note(
        undefined,
        `cookie ACK from ${remote.addr}:${remote.port} dropped, accept queue full`,
        'RFC 4987 §3.6',
        'tcp.listen.overflow',
      );
      return true;
    }
    l.counts.synCookiesValidated++;
    this.stack.counters.inc('tcp.syncookie.valid');
    // Rebuild the connection: replay the SYN the cookie stands for (its SYN-ACK went out
    // already, statelessly, so the replayed one is not sent), then take the ACK.
    const conn = new TcpConnection(opts);
    const syn: TcpSegment = {
      srcPort: seg.srcPort,
      dstPort: seg.dstPort,
      seq: clientIsn,
      ack: 0,
      flags: synFlags,
      window: seg.window,
      urgentPointer: 0,
      options: synOptions,
      payload: EMPTY,
    };
    this.connTrace.muted = true;
    try {
      conn.listen(now);
      conn.receive(syn, now);
    } finally {
      this.connTrace.muted = false;
    }
    const tcb = this.register(conn, d.version, opts);
    l.addSynReceived(tcb);
    l.note(tcb, 'SYN cookie valid: connection rebuilt', 'RFC 4987 §3.6');
    tcb.handle(conn.receive(seg, now));
    return true;
  }

  receiveIcmpError(e: IcmpErrorReport): void {
    const stack = this.stack;
    if (e.quoted.length < 8) {
      stack.counters.inc('tcp.icmp.malformed');
      return;
    }
    const q = e.quoted;
    const srcPort = (q[0]! << 8) | q[1]!;
    const dstPort = (q[2]! << 8) | q[3]!;
    const seq = ((q[4]! << 24) | (q[5]! << 16) | (q[6]! << 8) | q[7]!) >>> 0;
    // The quoted segment is one we sent: its source is our end.
    const tcb = this.conns.get(tupleKey(e.src, srcPort, e.dst, dstPort));
    if (!tcb) {
      stack.counters.inc('tcp.icmp.no-connection');
      return;
    }
    const conn = tcb.conn;
    // RFC 5927 §4.1 (and RFC 5961's spirit): believe only errors about data in flight.
    if (!(seqLeq(conn.sndUna, seq) && seqLt(seq, conn.sndMax))) {
      this.dropped(
        'tcp.icmp.out-of-window',
        `ICMP ${e.kind} for seq ${seq} outside [${conn.sndUna}, ${conn.sndMax})`,
        'RFC 5927 §4.1',
      );
      return;
    }
    if (e.kind === 'packet-too-big') {
      stack.counters.inc('tcp.icmp.pmtu');
      // The IP layer has lowered its path MTU already; follow it.
      this.pathMtuDropped(tcb, e.mtu ?? stack.mtuFor(tcb.remote.addr), stack.clock.now());
      return;
    }
    const [code, hard] = classifyIcmp(e);
    const now = stack.clock.now();
    if (hard && conn.state === 'SYN-SENT') {
      // RFC 1122 §4.2.3.9: a hard error aborts a connection attempt; RFC 5461 §4.1 keeps
      // it to the attempt (a synchronized connection is never aborted by ICMP).
      stack.counters.inc('tcp.icmp.hard');
      const err = systemError('connect', code, tcb.remote.addr, tcb.remote.port);
      err.icmp = { kind: e.kind, code: e.code, reporter: e.reporter };
      tcb.hardError = err;
      this.traceLocal(
        `${tcb.key} ICMP ${e.kind} code ${e.code} from ${e.reporter}: ${code}, connection attempt aborted`,
        'RFC 1122 §4.2.3.9',
        { errno: code },
      );
      tcb.handle(conn.abort(now));
      return;
    }
    stack.counters.inc('tcp.icmp.soft');
    tcb.softError = code;
    this.traceLocal(
      `${tcb.key} ICMP ${e.kind} code ${e.code} from ${e.reporter}: ${code} (soft)`,
      'RFC 5461 §4',
      { errno: code },
    );
  }

  /**
   * Stop everything at once: cancel every timer and forget every connection and listener,
   * sending nothing (for tearing a simulation or a TUN session down; sockets still open see
   * no further events).
   */
  shutdown(): void {
    for (const tcb of [...this.conns.values()]) {
      tcb.owner = undefined;
      this.forget(tcb);
    }
    for (const list of [...this.listeners.values()]) for (const l of [...list]) this.unlisten(l);
  }

  // -------------------------------------------------------------------------------------
  // Inspection

  get stats(): TcpStats {
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
    return {
      connections: this.conns.size,
      byState,
      listeners,
      timersArmed: this.timers.armed,
      sendBuffered,
      receiveBuffered,
    };
  }

  /** Every connection in the table (TIME-WAIT included), for the CLI and tests. */
  connections(): TcpConnection[] {
    return [...this.conns.values()].map((t) => t.conn);
  }

  /** @internal Can this connection take SEND calls? */
  static canSend(state: TcpState): boolean {
    return USER_SEND_STATES.has(state);
  }

  private dropped(counter: string, detail: string, rfc: string): void {
    const stack = this.stack;
    countDrop(stack.counters, stack.trace, counter, () => ({
      t: stack.clock.now(),
      host: stack.name,
      layer: 'tcp',
      summary: `dropped: ${detail}`,
      rfc,
    }));
  }

  private traceLocal(summary: string, rfc: string, fields: Record<string, unknown>): void {
    const stack = this.stack;
    if (!stack.trace.enabled) return;
    stack.trace.emit({
      t: stack.clock.now(),
      host: stack.name,
      layer: 'tcp',
      dir: 'local',
      summary,
      fields,
      rfc,
    });
  }
}
