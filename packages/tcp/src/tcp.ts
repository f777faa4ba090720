import {
  cachedAddressBytes,
  type IcmpErrorReport,
  IPPROTO_TCP,
  IPV4_MIN_HEADER,
  IPV6_HEADER_LENGTH,
  type IpDelivery,
  type IpProtocolHandler,
  type IpStack,
} from '@stepwire/ip';
import { type Counter, markWriteOnce, superSegments, TimerGroup } from '@stepwire/wire';
import {
  type TcpEndpoint as TcpAddress,
  type TcpConnection,
  type TcpConnectionOptions,
  type TcpState,
  USER_SEND_STATES,
} from './connection/index.ts';
import {
  type EndpointSink,
  type TcpConnectionDefaults,
  TcpEndpoint,
  type TcpEndpointOptions,
  type TcpEndpointStats,
  type TcpOpenOptions,
} from './endpoint/endpoint.ts';
import type { TcpListener, TcpListenOptions } from './endpoint/listener.ts';
import type { Tcb, TcbOwner } from './endpoint/tcb.ts';
import type { TcpSystemError } from './errors.ts';
import type { FastOpenCache, FastOpenKeys } from './fastopen.ts';
import type { IsnGenerator } from './isn.ts';
import { encodeSegmentInto, RST, segmentHeaderLength, TCP, type TcpSegment } from './segment.ts';
import { TcpServer, type TcpServerOptions } from './server.ts';
import { type TcpConnectOptions, TcpSocket } from './socket.ts';
import type { SynCookies } from './syncookie.ts';
import type { TcpServerHost } from './types.ts';

export { type TcpConnectionDefaults, tupleKey } from './endpoint/endpoint.ts';
export { Tcb, type TcbOwner } from './endpoint/tcb.ts';

export type TcpStackOptions = TcpEndpointOptions;

export interface TcpStats extends TcpEndpointStats {
  /** Timers armed by this stack's TCP (connections, listeners, socket idle timers). */
  timersArmed: number;
}

/**
 * TCP for one host: the driver of a sans-I/O TcpEndpoint (endpoint/). It registers as the
 * IP protocol handler for protocol 6, reads the clock, keeps every timer in one
 * TimerGroup (so `stats.timersArmed` shows a leak as growth), encodes and sends what the
 * endpoint gives it, and makes the Node-shaped objects (TcpSocket, TcpServer).
 *
 * Each connection has at most one timer, armed at the deadline the endpoint asks for.
 * A segment too big for the path (the IP layer says so at send time) lowers the
 * connection's MSS through the endpoint and is sent fragmented (RFC 8201 §4).
 *
 * Counters of its own (on the stack): 'tcp.tx', 'tcp.rst.sent', 'tcp.tx.error',
 * 'tcp.tx.fragmented'; the endpoint's are listed on TcpEndpoint.
 */
export class Tcp implements IpProtocolHandler, TcpServerHost, EndpointSink {
  /** The sans-I/O core: connections, listeners, cookies, TIME-WAIT. */
  readonly endpoint: TcpEndpoint;
  /** Every timer this TCP arms goes through here, so `stats.timersArmed` shows them all. */
  readonly timers: TimerGroup;
  /** Where outgoing segments are written (header room in front), one allocation per slab. */
  private readonly slab = new PacketSlab();
  /** 'tcp.tx', counted per segment: held, taken on the first (see Counters.counter). */
  private txCount: Counter | undefined;

  constructor(
    readonly stack: IpStack,
    options: TcpStackOptions = {},
  ) {
    this.timers = new TimerGroup(stack.clock);
    this.endpoint = new TcpEndpoint(stack, this, options);
    stack.registerProtocol(IPPROTO_TCP, this);
  }

  now(): number {
    return this.stack.clock.now();
  }

  // The endpoint's tables and keys, for the CLI and tests.
  /** @internal Connections by 4-tuple key. */
  get conns(): Map<string, Tcb> {
    return this.endpoint.conns;
  }
  /** @internal Listeners by port. */
  get listeners(): Map<number, TcpListener[]> {
    return this.endpoint.listeners;
  }
  get isn(): IsnGenerator {
    return this.endpoint.isn;
  }
  get synCookies(): SynCookies {
    return this.endpoint.synCookies;
  }
  get fastOpenKeys(): FastOpenKeys {
    return this.endpoint.fastOpenKeys;
  }
  /** The client's Fast Open cookies, per server address (RFC 7413 §4.1.3). */
  get fastOpenCache(): FastOpenCache {
    return this.endpoint.fastOpenCache;
  }
  get defaults(): TcpConnectionDefaults {
    return this.endpoint.defaults;
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
  // Calls from sockets and servers: the endpoint's, with the clock read here

  /** Open a listener, or return EADDRINUSE / EADDRNOTAVAIL as a Node-shaped error. */
  listen(opts: TcpListenOptions): TcpListener | TcpSystemError {
    return this.endpoint.listen(opts, this.now());
  }

  /** Close a listener: connections it had not handed to the application are reset. */
  unlisten(l: TcpListener): void {
    this.endpoint.unlisten(l, this.now());
  }

  accept(l: TcpListener): Tcb | undefined {
    return this.endpoint.accept(l, this.now());
  }

  /** Active open for a socket: choose the source address and port, send the SYN. */
  open(owner: TcbOwner, remote: TcpAddress, opts: TcpOpenOptions): Tcb | TcpSystemError {
    return this.endpoint.open(owner, remote, opts, this.now());
  }

  /** @internal Arm the connection's one timer for its next deadline. */
  arm(tcb: Tcb): void {
    this.endpoint.arm(tcb);
  }

  /** @internal The socket lets go; the connection finishes (or is reset) on its own. */
  orphan(tcb: Tcb): void {
    this.endpoint.orphan(tcb, this.now());
  }

  /** The MSS to advertise toward `dst`: the path MTU less the IP and TCP headers (RFC 9293 §3.7.1). */
  mssFor(dst: string): number {
    return this.endpoint.mssFor(dst);
  }

  /** The options of a connection: the stack's defaults, then the caller's, then what we own. */
  connectionOptions(
    local: TcpAddress,
    remote: TcpAddress,
    extra: Partial<TcpConnectionOptions>,
    now: number,
  ): TcpConnectionOptions {
    return this.endpoint.connectionOptions(local, remote, extra, now);
  }

  findListener(version: 4 | 6, dst: string, port: number): TcpListener | undefined {
    return this.endpoint.findListener(version, dst, port);
  }

  // -------------------------------------------------------------------------------------
  // EndpointSink: the endpoint's output

  /**
   * @internal Encode a segment and hand it to IP. The segment is written once, into a
   * buffer with room in front for the IP header, which IP writes there: the payload is
   * copied from the send queue here and nowhere else on its way to the link. With the
   * link's offloads the checksum is left partial (the link completes it) and a segment
   * longer than the MSS goes as a TSO super-segment.
   */
  transmit(src: string, dst: string, seg: TcpSegment, tcb: Tcb | undefined, ecn: number | undefined): void {
    const stack = this.stack;
    const offloads = stack.offloadsFor?.(dst);
    const room = dst.includes(':') ? IPV6_HEADER_LENGTH : IPV4_MIN_HEADER;
    const hdrLen = segmentHeaderLength(seg);
    const length = hdrLen + seg.payload.length;
    const mss = tcb?.conn.mss ?? 0;
    // A super-segment only toward a link that cuts it; elsewhere a segment over the MSS
    // (one sent before the path MTU fell) goes as before, fragmented by IP if need be.
    const gso =
      tcb !== undefined && mss > 0 && seg.payload.length > mss && (offloads?.tsoMax ?? 0) > 0
        ? { size: mss, transportHeaderLength: hdrLen }
        : undefined;
    // The segment's bytes, with `room` bytes before them in the same slab for IP's header.
    // A super-segment's buffer comes from wire's pool, which a link that has written it
    // (TUN) refills: no 64 KB of garbage per segment. Not while tracing, whose listeners
    // may keep a packet's bytes.
    const bytes =
      gso !== undefined && room + length <= superSegments.size && !stack.trace.enabled
        ? new Uint8Array(superSegments.take(), room, length)
        : this.slab.take(room, length);
    const partial = offloads?.checksum === true;
    // The addresses as bytes, for the pseudo-header and for IP (parsed once per connection).
    const ab = tcb === undefined ? addressBytes(src, dst) : (tcb.addressBytes ??= addressBytes(src, dst));
    encodeSegmentInto(seg, ab ?? { src, dst }, bytes, 0, partial ? 'partial' : 'full');
    if (partial) stack.counters.inc('tcp.tx.csum-partial');
    if (gso) stack.counters.inc('tcp.tx.tso');
    // RFC 8201 / RFC 1191: segments go with DF, and the MSS follows the path MTU.
    // RFC 3168 §6.1.1: the connection says which segments are ECN-capable.
    let r = stack.send({
      src,
      dst,
      srcBytes: ab?.src,
      dstBytes: ab?.dst,
      protocol: IPPROTO_TCP,
      payload: bytes,
      dontFragment: true,
      ecn,
      headroom: room,
      // One object of one shape per segment (absent offloads are undefined, not spread in).
      csumOffset: partial ? TCP.checksum : undefined,
      gso,
    });
    (this.txCount ??= stack.counters.counter('tcp.tx')).value++;
    if (seg.flags & RST) stack.counters.inc('tcp.rst.sent');
    if (!r.ok && r.error === 'too-big' && gso === undefined) {
      // Too big for the path: future segments shrink to the MTU; this one must not be lost
      // (a retransmission of the same bytes would be just as big), so IP fragments it.
      if (r.mtu !== undefined && tcb) this.endpoint.pathMtuDropped(tcb, r.mtu, this.now(), false);
      stack.counters.inc('tcp.tx.fragmented');
      r = stack.send({
        src,
        dst,
        srcBytes: ab?.src,
        dstBytes: ab?.dst,
        protocol: IPPROTO_TCP,
        payload: bytes,
        dontFragment: false,
        ecn,
        csumOffset: partial ? TCP.checksum : undefined,
      });
    } else if (!r.ok && r.error === 'too-big' && r.mtu !== undefined && tcb) {
      // A super-segment whose pieces no longer fit the path: the MSS follows the MTU, and
      // the bytes go again, cut smaller, when recovery finds them missing.
      this.endpoint.pathMtuDropped(tcb, r.mtu, this.now(), false);
    }
    if (!r.ok) stack.counters.inc('tcp.tx.error');
  }

  /** @internal */
  wake(tcb: Tcb, at: number): void {
    tcb.wakeHandle?.cancel();
    tcb.wakeHandle = this.timers.setTimer(at, () => {
      tcb.wakeHandle = undefined;
      this.endpoint.onTimeout(tcb, this.now());
    });
  }

  /** @internal */
  cancelWake(tcb: Tcb): void {
    tcb.wakeHandle?.cancel();
    tcb.wakeHandle = undefined;
  }

  /** @internal */
  acceptReady(l: TcpListener): void {
    if (l.acceptScheduled || !l.onAcceptable) return;
    l.acceptScheduled = true;
    const timers = this.timers;
    // A clock event rather than a direct call: the application accepts "later", so a burst
    // of handshakes arriving together fills the queue as it would on a real host.
    timers.setTimer(timers.now(), () => {
      l.acceptScheduled = false;
      if (!l.closed) l.onAcceptable?.();
    });
  }

  // -------------------------------------------------------------------------------------
  // IP protocol handler

  receive(d: IpDelivery): void {
    this.endpoint.receive(d, this.now());
  }

  receiveIcmpError(e: IcmpErrorReport): void {
    this.endpoint.receiveIcmpError(e, this.now());
  }

  /**
   * Stop everything at once: cancel every timer and forget every connection and listener,
   * sending nothing (for tearing a simulation or a TUN session down; sockets still open see
   * no further events).
   */
  shutdown(): void {
    this.endpoint.shutdown(this.now());
  }

  // -------------------------------------------------------------------------------------
  // Inspection

  get stats(): TcpStats {
    const e = this.endpoint.stats;
    return {
      connections: e.connections,
      byState: e.byState,
      listeners: e.listeners,
      timersArmed: this.timers.armed,
      sendBuffered: e.sendBuffered,
      receiveBuffered: e.receiveBuffered,
    };
  }

  /** Every connection in the table (TIME-WAIT included), for the CLI and tests. */
  connections(): TcpConnection[] {
    return this.endpoint.connections();
  }

  /** @internal Can this connection take SEND calls? */
  static canSend(state: TcpState): boolean {
    return USER_SEND_STATES.has(state);
  }
}

/** `src` and `dst` as bytes of one family, or undefined when either does not parse (IP then says why). */
function addressBytes(src: string, dst: string): { src: Uint8Array; dst: Uint8Array } | undefined {
  const s = cachedAddressBytes(src);
  const d = cachedAddressBytes(dst);
  return s !== undefined && d !== undefined && s.length === d.length ? { src: s, dst: d } : undefined;
}

/**
 * Buffers for outgoing packets, cut from shared slabs: a segment's buffer is written once
 * and handed down; nothing here is ever reused, so a link that keeps a packet (loopback)
 * or a receiver that keeps a view of it is safe, and the slabs say so (wire's
 * markWriteOnce: a MemoryLink keeps their packets without copying them). One allocation
 * per SLAB bytes instead of a zero-filled array per segment.
 */
class PacketSlab {
  private buf = freshSlab(PACKET_SLAB);
  private used = 0;

  /** `n` bytes with `room` bytes before them that are the caller's too (header room). */
  take(room: number, n: number): Uint8Array {
    const size = room + n;
    // A super-segment (TSO) gets its own buffer, unzeroed as the slabs are: zeroing 64 KB
    // per segment was a tenth of the sender's main thread over TUN with offloads.
    if (size > PACKET_SLAB / 4) return new Uint8Array(freshSlab(size), room, n);
    if (this.used + size > PACKET_SLAB) {
      this.buf = freshSlab(PACKET_SLAB);
      this.used = 0;
    }
    const out = new Uint8Array(this.buf, this.used + room, n);
    // 8-byte aligned starts, so the headers and checksums that follow read aligned words.
    this.used = (this.used + size + 7) & ~7;
    return out;
  }
}

const PACKET_SLAB = 128 * 1024;

/**
 * Slab memory without zeroing it first: encodeSegmentInto writes every byte of a segment
 * and IP every byte of its header, before anyone sees them (as Buffer.allocUnsafe's pool).
 */
function freshSlab(size: number): ArrayBuffer {
  const b = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  markWriteOnce(b);
  return b;
}
