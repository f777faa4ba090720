import { EventEmitter } from 'node:events';
import {
  classifyIcmp,
  type IcmpErrorReport,
  IPPROTO_UDP,
  type IpDelivery,
  type IpProtocolHandler,
  type IpStack,
  type SendResult,
} from '@stepwire/ip';
import {
  allocBytes,
  chooseEphemeralPort,
  countDrop,
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  ParseError,
  readU16,
  TimerGroup,
} from '@stepwire/wire';
import {
  type AddressFamily,
  canonicalAddress,
  isMulticastOrBroadcast,
  type ResolvedAddress,
} from './address.ts';
import { decodeUdp, decodeUdpHeader, encodeUdpInto, UDP, UDP_HEADER_LENGTH } from './datagram.ts';
import { codeError, type SystemErrorCode, systemError, type UdpSystemError } from './errors.ts';

export type UdpSocketType = 'udp4' | 'udp6';

export interface UdpSocketOptions {
  type: UdpSocketType;
  /**
   * SO_REUSEADDR: two sockets that both set it may bind the same port (for example one on a
   * specific address and one on the wildcard). Without it, such a bind fails with EADDRINUSE,
   * as on Linux.
   */
  reuseAddr?: boolean;
  /** Aborting it closes the socket, as with node:dgram. */
  signal?: AbortSignal;
}

/** Where a datagram came from, as node:dgram reports it. */
export interface RemoteInfo {
  address: string;
  family: AddressFamily;
  port: number;
  /** Payload bytes. */
  size: number;
  /**
   * The IP ECN field it arrived with (RFC 3168 §5: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE), for
   * transports that do their own ECN, as QUIC (RFC 9000 §13.4). Not in node:dgram, which
   * cannot read it; absent for Not-ECT (or when the IP layer did not report it).
   */
  ecn?: number;
}

export interface AddressInfo {
  address: string;
  family: AddressFamily;
  port: number;
}

export interface BindOptions {
  port?: number;
  address?: string;
  /** Accepted for node:dgram compatibility; there is no cluster to share with. */
  exclusive?: boolean;
}

export type SendCallback = (error: Error | null, bytes?: number) => void;
/** What send() accepts, as node:dgram: bytes, text (UTF-8), or a list of them sent as one datagram. */
export type UdpMessage = string | ArrayBufferView | readonly (string | ArrayBufferView)[];

type UdpSocketEvents = {
  message: [msg: Buffer, rinfo: RemoteInfo];
  listening: [];
  connect: [];
  close: [];
  error: [err: Error];
};

/** The one ephemeral range of this stack (wire's ports.ts, RFC 6335 §6), re-exported for UDP's users. */
export { EPHEMERAL_PORT_MAX, EPHEMERAL_PORT_MIN };
/** 65535 − 20 (IPv4 header) − 8: the IPv4 Total Length field counts the IP header. */
export const UDP_MAX_PAYLOAD_IPV4 = 65507;
/** 65535 − 8: the IPv6 Payload Length excludes the fixed header (RFC 8200 §3); no jumbograms. */
export const UDP_MAX_PAYLOAD_IPV6 = 65527;

interface FamilyInfo {
  family: AddressFamily;
  any: string;
  /** 'localhost' of this family. */
  loopback: ResolvedAddress;
  maxPayload: number;
}

const FAMILIES: Record<UdpSocketType, FamilyInfo> = {
  udp4: {
    family: 'IPv4',
    any: '0.0.0.0',
    loopback: { family: 'IPv4', address: '127.0.0.1', addressBytes: new Uint8Array([127, 0, 0, 1]) },
    maxPayload: UDP_MAX_PAYLOAD_IPV4,
  },
  udp6: {
    family: 'IPv6',
    any: '::',
    loopback: {
      family: 'IPv6',
      address: '::1',
      addressBytes: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    },
    maxPayload: UDP_MAX_PAYLOAD_IPV6,
  },
};

const RFC_768 = 'RFC 768';
/** Header room UDP leaves in front of each datagram it sends: the IPv6 fixed header (RFC 8200 §3). */
const IP_HEADROOM = 40;

const SEND_ERRORS: Record<Exclude<SendResult, { ok: true }>['error'], SystemErrorCode> = {
  'no-route': 'ENETUNREACH',
  'too-big': 'EMSGSIZE',
  'no-source': 'EADDRNOTAVAIL',
};

/**
 * UDP for one host (RFC 768): the protocol handler the IP layer calls for protocol 17,
 * the table of bound sockets, and the factory of node:dgram-like sockets.
 *
 * Demultiplexing (RFC 1122 §4.1.3.1 leaves the policy to the host) picks, among the sockets
 * on the destination port of the datagram's family, the most specific match: a connected
 * socket whose remote address and port equal the datagram's source beats one bound to the
 * exact local address, which beats one on the wildcard; a connected socket never receives
 * from another peer. IPv4 and IPv6 are separate tables: a 'udp6' socket on '::' does not
 * receive IPv4 datagrams (as with IPV6_V6ONLY).
 *
 * Counters (on the stack): 'udp.rx' (delivered to a socket), 'udp.tx', 'udp.drop.checksum',
 * 'udp.drop.malformed', 'udp.drop.no-port', 'udp.tx.error', 'udp.icmp.hard',
 * 'udp.icmp.soft', 'udp.icmp.no-socket', 'udp.icmp.unreported', 'udp.icmp.malformed'.
 */
export interface UdpStats {
  boundSockets: number;
  timersArmed: number;
}

export class Udp implements IpProtocolHandler {
  private readonly tables: Record<AddressFamily, Map<number, UdpSocket[]>> = {
    IPv4: new Map(),
    IPv6: new Map(),
  };

  /** Deferred socket callbacks ('listening', 'close', send callbacks), counted for stats. */
  /** @internal */ readonly timers: TimerGroup;

  constructor(readonly stack: IpStack) {
    stack.registerProtocol(IPPROTO_UDP, this);
    this.timers = new TimerGroup(stack.clock);
  }

  /** Bound sockets and armed timers: both must return to their idle values when sockets close. */
  get stats(): UdpStats {
    let sockets = 0;
    for (const table of Object.values(this.tables)) for (const list of table.values()) sockets += list.length;
    return { boundSockets: sockets, timersArmed: this.timers.armed };
  }

  /** Like dgram.createSocket: a type or options, and an optional 'message' listener. */
  createSocket(
    typeOrOptions: UdpSocketType | UdpSocketOptions,
    onMessage?: (msg: Buffer, rinfo: RemoteInfo) => void,
  ): UdpSocket {
    const opts = typeof typeOrOptions === 'string' ? { type: typeOrOptions } : typeOrOptions;
    if (opts.type !== 'udp4' && opts.type !== 'udp6') {
      throw codeError(
        TypeError,
        'ERR_SOCKET_BAD_TYPE',
        'Bad socket type specified. Valid types are: udp4, udp6',
      );
    }
    const s = new UdpSocket(this, opts.type, opts.reuseAddr === true);
    if (onMessage) s.on('message', onMessage);
    const signal = opts.signal;
    if (signal) {
      const abort = (): void => {
        if (!s.isClosed) s.close();
      };
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
    }
    return s;
  }

  /** Sockets currently bound, for inspection (CLI, tests). */
  boundSockets(): UdpSocket[] {
    const out: UdpSocket[] = [];
    for (const t of Object.values(this.tables)) for (const list of t.values()) out.push(...list);
    return out;
  }

  // ---- binding table (used by UdpSocket) ----

  /** @internal Claim (address, port) for the socket; port 0 picks an ephemeral port. */
  claim(s: UdpSocket, address: string, port: number, addressBytes?: Uint8Array): UdpSystemError | undefined {
    const table = this.tables[s.familyInfo.family];
    if (port === 0) {
      const p = this.ephemeralPort(table, address);
      if (p === undefined) return systemError('bind', 'EADDRINUSE', address, 0);
      port = p;
    } else if (!this.portFree(table, port, address, s.reuseAddr)) {
      return systemError('bind', 'EADDRINUSE', address, port);
    }
    s.localAddress = address;
    s.localBytes = addressBytes;
    s.localPort = port;
    let list = table.get(port);
    if (!list) table.set(port, (list = []));
    list.push(s);
    return undefined;
  }

  /** @internal */
  release(s: UdpSocket): void {
    const table = this.tables[s.familyInfo.family];
    const list = table.get(s.localPort);
    if (!list) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) table.delete(s.localPort);
  }

  private portFree(table: Map<number, UdpSocket[]>, port: number, address: string, reuse: boolean): boolean {
    const list = table.get(port);
    if (!list) return true;
    for (const other of list) {
      if (reuse && other.reuseAddr) continue;
      const any = other.familyInfo.any;
      if (other.localAddress === address || other.localAddress === any || address === any) return false;
    }
    return true;
  }

  /**
   * RFC 6056 §3.3.1 (Algorithm 1): start at a random port of the range and walk up, wrapping,
   * until a free one is found. The randomness comes from the stack's seeded Prng, so a
   * simulated run repeats exactly.
   */
  private ephemeralPort(table: Map<number, UdpSocket[]>, address: string): number | undefined {
    return chooseEphemeralPort(this.stack.prng, EPHEMERAL_PORT_MIN, EPHEMERAL_PORT_MAX, (port) =>
      this.portFree(table, port, address, false),
    );
  }

  private lookup(
    family: AddressFamily,
    localAddress: string,
    localPort: number,
    remoteAddress: string,
    remotePort: number,
  ): UdpSocket | undefined {
    const list = this.tables[family].get(localPort);
    if (!list) return undefined;
    let best: UdpSocket | undefined;
    let bestScore = -1;
    for (const s of list) {
      let score = 0;
      if (s.localAddress !== s.familyInfo.any) {
        if (s.localAddress !== localAddress) continue;
        score += 2;
      }
      const r = s.remote;
      if (r) {
        if (r.address !== remoteAddress || r.port !== remotePort) continue;
        score += 4;
      }
      // '>=': among equals (only possible with reuseAddr) the socket bound last wins, as on Linux.
      if (score >= bestScore) {
        best = s;
        bestScore = score;
      }
    }
    return best;
  }

  // ---- IP protocol handler ----

  receive(d: IpDelivery): void {
    const stack = this.stack;
    let dg: ReturnType<typeof decodeUdp>;
    try {
      // A checksum the link verified ('valid') or left for offload ('partial', incomplete by
      // design: the kernel's sender on this machine never finished it) is not checked again.
      // The pseudo-header from the header's own bytes, never the text parsed back (RFC 768).
      const pseudo = { src: d.srcBytes, dst: d.dstBytes };
      if (d.csum === undefined) dg = decodeUdp(d.payload, pseudo);
      else {
        stack.counters.inc(`udp.rx.csum-${d.csum}`);
        dg = decodeUdp(d.payload, pseudo, NO_VERIFY);
      }
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      const reason = e.field === 'checksum' ? 'udp.drop.checksum' : 'udp.drop.malformed';
      countDrop(stack.counters, stack.trace, reason, () => ({
        t: stack.clock.now(),
        host: stack.name,
        layer: 'udp',
        summary: `UDP from ${d.src} dropped: ${e.message}`,
        fields: { src: d.src, dst: d.dst, length: d.payload.length },
        rfc: e.field !== 'checksum' ? RFC_768 : d.version === 6 ? 'RFC 8200 §8.1' : 'RFC 1122 §4.1.3.4',
      }));
      return;
    }
    const family: AddressFamily = d.version === 4 ? 'IPv4' : 'IPv6';
    const sock = this.lookup(family, d.dst, dg.dstPort, d.src, dg.srcPort);
    if (!sock) {
      const answer = !isMulticastOrBroadcast(d.dstBytes);
      countDrop(stack.counters, stack.trace, 'udp.drop.no-port', () => ({
        t: stack.clock.now(),
        host: stack.name,
        layer: 'udp',
        summary: `UDP ${dg.srcPort}→${dg.dstPort} len=${dg.payload.length} no socket${answer ? ', port unreachable' : ''}`,
        fields: this.fields(d.src, d.dst, d.payload, dg.payload.length),
        rfc: 'RFC 1122 §4.1.3.1',
      }));
      // RFC 1122 §4.1.3.1: SHOULD send ICMP Port Unreachable, never for broadcast/multicast.
      if (answer) stack.sendUnreachable(d, 'port');
      return;
    }
    stack.counters.inc('udp.rx');
    if (stack.trace.enabled) {
      stack.trace.emit({
        t: stack.clock.now(),
        host: stack.name,
        layer: 'udp',
        dir: 'in',
        summary: `UDP ${dg.srcPort}→${dg.dstPort} len=${dg.payload.length}`,
        fields: this.fields(d.src, d.dst, d.payload, dg.payload.length),
        rfc: RFC_768,
      });
    }
    sock.deliver(dg.payload, d.src, dg.srcPort, d.ecn);
  }

  receiveIcmpError(e: IcmpErrorReport): void {
    const stack = this.stack;
    if (e.quoted.length < 4) {
      stack.counters.inc('udp.icmp.malformed');
      return;
    }
    // The quoted datagram is one this host sent: its source is our socket, its destination the
    // peer. Only the ports are read (RFC 792 promises 8 bytes, a router may cut them short).
    const srcPort = readU16(e.quoted, UDP.srcPort);
    const dstPort = readU16(e.quoted, UDP.dstPort);
    const family: AddressFamily = e.version === 4 ? 'IPv4' : 'IPv6';
    const sock = this.lookup(family, e.src, srcPort, e.dst, dstPort);
    // RFC 1122 §4.1.3.3: UDP passes ICMP errors up; hard ones reach the socket, soft ones
    // (a transient routing problem, a smaller path MTU) are only counted.
    const [code, hard] = classifyIcmp(e);
    const counter = !sock ? 'udp.icmp.no-socket' : hard ? 'udp.icmp.hard' : 'udp.icmp.soft';
    stack.counters.inc(counter);
    if (stack.trace.enabled) {
      stack.trace.emit({
        t: stack.clock.now(),
        host: stack.name,
        layer: 'udp',
        dir: sock ? 'local' : 'drop',
        summary: `UDP ${srcPort}→${dstPort} ICMP ${e.kind} code ${e.code} from ${e.reporter}: ${code}${hard ? '' : ' (soft, not reported)'}${sock ? '' : ', no socket'}`,
        fields: { kind: e.kind, code: e.code, reporter: e.reporter, src: e.src, dst: e.dst, errno: code },
        reason: counter,
        rfc: 'RFC 1122 §4.1.3.3',
      });
    }
    if (!sock || !hard) return;
    // A socket nobody listens to for errors must not turn a peer's ICMP message (which anyone
    // can forge) into an uncaught exception: count it instead of emitting.
    if (sock.listenerCount('error') === 0) {
      stack.counters.inc('udp.icmp.unreported');
      return;
    }
    const err = systemError('recvmsg', code, e.dst, dstPort);
    err.icmp = { kind: e.kind, code: e.code, reporter: e.reporter };
    sock.emit('error', err);
  }

  /**
   * @internal Encode and hand one datagram to IP. The addresses go as bytes the socket
   * parsed once (bind, connect, send's argument) or the host's own interface address, so
   * neither the checksum nor IP parses text (ip/src/types.ts).
   */
  transmit(
    s: UdpSocket,
    payload: Uint8Array,
    dst: string,
    dstBytes: Uint8Array,
    port: number,
  ): UdpSystemError | undefined {
    const stack = this.stack;
    let src: string;
    let srcBytes: Uint8Array;
    if (s.localBytes !== undefined) {
      src = s.localAddress;
      srcBytes = s.localBytes;
    } else {
      const own = stack.sourceAddressFor(dst, dstBytes);
      if (own === undefined) return this.txError('ENETUNREACH', s, payload, dst, port, 'no source address');
      src = own.address;
      srcBytes = own.addressBytes;
    }
    // Room in front for the IP header (40 bytes covers IPv6's; IPv4 uses the last 20), so
    // IP writes it there and the datagram is not copied again (SendOptions.headroom).
    const room = allocBytes(IP_HEADROOM + UDP_HEADER_LENGTH + payload.length);
    const n = encodeUdpInto(
      { srcPort: s.localPort, dstPort: port, payload },
      { src: srcBytes, dst: dstBytes },
      room,
      IP_HEADROOM,
    );
    const bytes = new Uint8Array(room.buffer, room.byteOffset + IP_HEADROOM, n);
    if (stack.trace.enabled) {
      stack.trace.emit({
        t: stack.clock.now(),
        host: stack.name,
        layer: 'udp',
        dir: 'out',
        summary: `UDP ${s.localPort}→${port} len=${payload.length}`,
        fields: this.fields(src, dst, bytes, payload.length),
        rfc: RFC_768,
      });
    }
    const r = stack.send({
      src,
      srcBytes,
      dst,
      dstBytes,
      protocol: IPPROTO_UDP,
      payload: bytes,
      headroom: IP_HEADROOM,
      ttl: s.ttl,
      ecn: s.ecn,
      ...(s.dontFragment ? { dontFragment: true } : {}),
    });
    if (!r.ok) return this.txError(SEND_ERRORS[r.error], s, payload, dst, port, r.error);
    stack.counters.inc('udp.tx');
    return undefined;
  }

  private txError(
    code: SystemErrorCode,
    s: UdpSocket,
    payload: Uint8Array,
    dst: string,
    port: number,
    why: string,
  ): UdpSystemError {
    const stack = this.stack;
    countDrop(stack.counters, stack.trace, 'udp.tx.error', () => ({
      t: stack.clock.now(),
      host: stack.name,
      layer: 'udp',
      summary: `UDP ${s.localPort}→${port} len=${payload.length} not sent: ${why} (${code})`,
      fields: { dst, dstPort: port, error: why },
    }));
    return systemError('send', code, dst, port);
  }

  /** A trace's fields: the header as it is on the wire (the codec's reading), and the addresses. */
  private fields(src: string, dst: string, wire: Uint8Array, payloadLength: number): Record<string, unknown> {
    return { src, dst, ...decodeUdpHeader(wire), payloadLength };
  }
}

type State = 'unbound' | 'bound' | 'closed';

/**
 * A datagram socket shaped like node:dgram's Socket: bind, send, connect, 'message',
 * 'listening', 'connect', 'close', 'error', address(), close().
 *
 * Timing: state changes happen at once (after bind() returns, address() works), while the
 * events Node emits asynchronously ('listening', 'connect', 'close', send callbacks and
 * errors) are scheduled on the stack's clock at the current time. Under a VirtualClock they
 * fire on the next advance, so a simulated run stays deterministic. 'message' and ICMP
 * 'error' events fire synchronously as the IP layer delivers.
 *
 * The Buffer handed to 'message' is a view of the received packet, not a copy.
 *
 * ICMP errors: a hard error (port unreachable -> ECONNREFUSED, see classifyIcmp) is emitted
 * as 'error' on the socket that sent the offending datagram, connected or not. Linux (and so
 * Node) reports it only on connected sockets; here an unconnected socket gets it too, with
 * the remote address and port in err.address / err.port, so that the sender of a datagram
 * learns that nobody listens. The socket keeps working after such an error. A socket with no
 * 'error' listener does not get it (counted as 'udp.icmp.unreported') rather than throwing.
 */
export class UdpSocket extends EventEmitter<UdpSocketEvents> {
  /** @internal */ localAddress = '';
  /** @internal localAddress as bytes, parsed once at bind; undefined on the wildcard (IP chooses per datagram). */
  localBytes: Uint8Array | undefined;
  /** @internal */ localPort = 0;
  /** @internal The connected peer, its address parsed once at connect. */
  remote: { address: string; addressBytes: Uint8Array; port: number } | undefined;
  /** @internal */ ttl: number | undefined;
  /** @internal The ECN codepoint sent datagrams carry (setEcn). */ ecn = 0;
  /** @internal Sent with DF (setDontFragment). */ dontFragment = false;
  /** @internal */ readonly familyInfo: FamilyInfo;
  private state: State = 'unbound';
  private broadcast = false;

  /** @internal Use Udp.createSocket. */
  constructor(
    private readonly udp: Udp,
    readonly type: UdpSocketType,
    /** @internal */ readonly reuseAddr: boolean,
  ) {
    super();
    this.familyInfo = FAMILIES[type];
  }

  /** bind(port?, address?, callback?) or bind({port, address}, callback?). Port 0 or none: ephemeral. */
  bind(
    port?: number | BindOptions | (() => void),
    address?: string | (() => void),
    callback?: () => void,
  ): this {
    let p: number | undefined;
    let a: string | undefined;
    if (typeof port === 'function') {
      callback = port;
    } else if (typeof port === 'object' && port !== null) {
      if (typeof address === 'function') callback = address;
      p = port.port;
      a = port.address;
    } else {
      p = port;
      if (typeof address === 'function') callback = address;
      else a = address;
    }
    if (this.state === 'closed') throw notRunning();
    if (this.state === 'bound') throw codeError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
    const bindPort = p === undefined || p === null ? 0 : portOf(p, true);
    if (callback) this.once('listening', callback);
    const err = this.doBind(bindPort, a);
    if (err) this.later(() => this.emit('error', err));
    return this;
  }

  /**
   * A stepwire extension for servers and tests: bind now and throw the system error
   * (EADDRINUSE, EADDRNOTAVAIL, ...) instead of emitting it. 'listening' is still emitted.
   */
  bindSync(port = 0, address?: string): AddressInfo {
    if (this.state === 'closed') throw notRunning();
    if (this.state === 'bound') throw codeError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
    const err = this.doBind(portOf(port, true), address);
    if (err) throw err;
    return this.address();
  }

  private doBind(port: number, address: string | undefined): UdpSystemError | undefined {
    const fam = this.familyInfo;
    let local = fam.any;
    let localBytes: Uint8Array | undefined;
    if (address !== undefined && address !== '') {
      const resolved = this.resolve(address, 'bind', port);
      if (resolved.error) return resolved.error;
      local = resolved.address.address;
      if (local !== fam.any) {
        if (!this.udp.stack.isLocalAddress(local)) return systemError('bind', 'EADDRNOTAVAIL', local, port);
        localBytes = resolved.address.addressBytes;
      }
    }
    const err = this.udp.claim(this, local, port, localBytes);
    if (err) return err;
    this.state = 'bound';
    this.later(() => {
      if (this.state === 'bound') this.emit('listening');
    });
    return undefined;
  }

  /** Resolve an address argument: an IP literal of this socket's family, or 'localhost'. */
  private resolve(
    text: string,
    syscall: string,
    port: number,
  ): { address: ResolvedAddress; error?: undefined } | { address?: undefined; error: UdpSystemError } {
    const fam = this.familyInfo;
    if (text === 'localhost') return { address: fam.loopback };
    const c = canonicalAddress(text);
    // No resolver: any other name fails as getaddrinfo would for an unknown host.
    if (!c) return { error: systemError('getaddrinfo', 'ENOTFOUND', text) };
    if (c.family !== fam.family) return { error: systemError(syscall, 'EINVAL', c.address, port) };
    return { address: c };
  }

  /**
   * node:dgram's send forms:
   *   send(msg, port, address?, cb?)              send(msg, offset, length, port, address?, cb?)
   *   send(msg, cb?) on a connected socket        send(msg, offset, length, cb?) on a connected socket
   * An omitted address means the loopback address of the family, as in Node.
   */
  send(msg: UdpMessage, port?: number, address?: string, callback?: SendCallback): void;
  send(msg: UdpMessage, port?: number, callback?: SendCallback): void;
  send(msg: UdpMessage, callback?: SendCallback): void;
  send(
    msg: UdpMessage,
    offset: number,
    length: number,
    port?: number,
    address?: string,
    callback?: SendCallback,
  ): void;
  send(msg: UdpMessage, offset: number, length: number, callback?: SendCallback): void;
  send(msg: UdpMessage, ...rest: unknown[]): void {
    let callback: SendCallback | undefined;
    const fnAt = rest.findIndex((x) => typeof x === 'function');
    if (fnAt >= 0) {
      callback = rest[fnAt] as SendCallback;
      rest = rest.slice(0, fnAt);
    }
    while (rest.length > 0 && (rest[rest.length - 1] === undefined || rest[rest.length - 1] === null))
      rest.pop();

    let payload = toBytes(msg);
    let port = 0;
    let address: unknown;
    if (this.remote) {
      if (rest.length === 2 && typeof rest[0] === 'number' && typeof rest[1] === 'number') {
        payload = sliceBytes(payload, rest[0], rest[1]);
      } else if (rest.length !== 0) {
        throw codeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
      }
    } else {
      if (rest.length >= 3) {
        payload = sliceBytes(payload, rest[0], rest[1]);
        rest = rest.slice(2);
      }
      port = portOf(rest[0], false);
      address = rest[1];
      if (address !== undefined && address !== null && typeof address !== 'string') {
        throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "address" argument must be of type string');
      }
    }
    if (this.state === 'closed') throw notRunning();
    const err = this.sendNow(payload, port, address as string | undefined, callback);
    if (err) this.later(() => (callback ? callback(err) : this.emit('error', err)));
  }

  private sendNow(
    payload: Uint8Array,
    port: number,
    address: string | undefined,
    callback: SendCallback | undefined,
  ): UdpSystemError | undefined {
    if (this.state === 'unbound') {
      const err = this.doBind(0, undefined);
      if (err) return err;
    }
    let dst: string;
    let dstBytes: Uint8Array;
    let dport: number;
    if (this.remote) {
      dst = this.remote.address;
      dstBytes = this.remote.addressBytes;
      dport = this.remote.port;
    } else {
      dport = port;
      const r = this.resolve(address || 'localhost', 'send', dport);
      if (r.error) return r.error;
      dst = r.address.address;
      dstBytes = r.address.addressBytes;
    }
    if (payload.length > this.familyInfo.maxPayload) return systemError('send', 'EMSGSIZE', dst, dport);
    // SO_BROADCAST: Linux refuses a broadcast destination unless the socket asked for it. Only
    // the limited broadcast is recognized here: directed broadcasts are the IP layer's knowledge.
    if (dst === '255.255.255.255' && !this.broadcast) return systemError('send', 'EACCES', dst, dport);
    const err = this.udp.transmit(this, payload, dst, dstBytes, dport);
    if (err) return err;
    if (callback) {
      const n = payload.length;
      this.later(() => callback(null, n));
    }
    return undefined;
  }

  /** Fix the remote end: send() without an address goes there, and only its datagrams arrive. */
  connect(port: number, address?: string | ((err?: Error) => void), callback?: (err?: Error) => void): void {
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (this.state === 'closed') throw notRunning();
    if (this.remote) throw codeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    const err = this.connectNow(portOf(port, false), address);
    if (err) {
      this.later(() => (callback ? callback(err) : this.emit('error', err)));
      return;
    }
    if (callback) this.once('connect', callback);
    this.later(() => {
      if (this.remote) this.emit('connect');
    });
  }

  private connectNow(port: number, address: string | undefined): UdpSystemError | undefined {
    const r = this.resolve(address || 'localhost', 'connect', port);
    if (r.error) return r.error;
    if (this.state === 'unbound') {
      const err = this.doBind(0, undefined);
      if (err) return err;
    }
    this.remote = { address: r.address.address, addressBytes: r.address.addressBytes, port };
    return undefined;
  }

  disconnect(): void {
    if (this.state === 'closed') throw notRunning();
    if (!this.remote) throw codeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    this.remote = undefined;
  }

  address(): AddressInfo {
    if (this.state === 'closed') throw notRunning();
    // As node:dgram on Linux: getsockname on a socket not yet bound fails with EBADF.
    if (this.state === 'unbound') throw systemError('getsockname', 'EBADF');
    return { address: this.localAddress, family: this.familyInfo.family, port: this.localPort };
  }

  remoteAddress(): AddressInfo {
    if (this.state === 'closed') throw notRunning();
    if (!this.remote) throw codeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    return { address: this.remote.address, family: this.familyInfo.family, port: this.remote.port };
  }

  close(callback?: () => void): this {
    if (this.state === 'closed') throw notRunning();
    if (callback) this.once('close', callback);
    if (this.state === 'bound') this.udp.release(this);
    this.state = 'closed';
    this.remote = undefined;
    this.later(() => this.emit('close'));
    return this;
  }

  /** SO_BROADCAST: allow sending to 255.255.255.255. As in Node, only on a bound socket. */
  setBroadcast(flag: boolean): void {
    if (this.state === 'closed') throw notRunning();
    if (this.state === 'unbound') throw systemError('setBroadcast', 'EBADF');
    this.broadcast = flag;
  }

  /** Bytes waiting to be sent: always 0, a datagram goes to the IP layer within send(). */
  getSendQueueSize(): number {
    return 0;
  }

  /** Datagrams waiting to be sent: always 0, for the same reason. */
  getSendQueueCount(): number {
    return 0;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Unicast TTL / hop limit for datagrams this socket sends (IP_TTL / IPV6_UNICAST_HOPS). */
  /**
   * The ECN codepoint (RFC 3168 §5, 0..3) of the datagrams this socket sends, as IP_TOS's two
   * low bits on Linux: QUIC marks its packets ECT(0) and validates the path (RFC 9000 §13.4).
   */
  setEcn(ecn: number): void {
    if (!Number.isInteger(ecn) || ecn < 0 || ecn > 3) throw systemError('setEcn', 'EINVAL');
    this.ecn = ecn;
  }

  /**
   * DF on every datagram sent, never fragmented here (Linux's IP_MTU_DISCOVER = IP_PMTUDISC_DO):
   * a datagram above the path MTU fails with EMSGSIZE instead. QUIC needs it (RFC 9000 §14:
   * "UDP datagrams MUST NOT be fragmented at the IP layer") for path MTU discovery.
   */
  setDontFragment(on: boolean): void {
    this.dontFragment = on;
  }

  setTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw systemError('setTTL', 'EINVAL');
    this.ttl = ttl;
    return ttl;
  }

  /** No event-loop handle to hold: both are no-ops kept for node:dgram compatibility. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  /** @internal Called by Udp for a datagram demultiplexed to this socket. */
  deliver(payload: Uint8Array, address: string, port: number, ecn?: number): void {
    const msg = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const rinfo: RemoteInfo = { address, family: this.familyInfo.family, port, size: payload.byteLength };
    // Only when ECN-marked, so a Not-ECT datagram's rinfo stays what node:dgram gives.
    if (ecn) rinfo.ecn = ecn;
    this.emit('message', msg, rinfo);
  }

  private later(fn: () => void): void {
    const timers = this.udp.timers;
    timers.setTimer(timers.now(), fn);
  }
}

/** Validate a port as node:dgram does: an integer or a numeric string, 1..65535 (0 allowed for bind). */
function portOf(p: unknown, allowZero: boolean): number {
  const n = typeof p === 'number' ? p : typeof p === 'string' && p.trim() !== '' ? Number(p) : Number.NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 0xffff) {
    throw codeError(
      RangeError,
      'ERR_SOCKET_BAD_PORT',
      `Port should be ${allowZero ? '>= 0' : '> 0'} and < 65536. Received ${String(p)}.`,
    );
  }
  return n;
}

function notRunning(): Error {
  return codeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
}

function viewBytes(v: string | ArrayBufferView): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw codeError(
    TypeError,
    'ERR_INVALID_ARG_TYPE',
    'The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView',
  );
}

function toBytes(msg: UdpMessage): Uint8Array {
  if (!Array.isArray(msg)) return viewBytes(msg as string | ArrayBufferView);
  const parts = (msg as readonly (string | ArrayBufferView)[]).map(viewBytes);
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}

function sliceBytes(b: Uint8Array, offset: unknown, length: unknown): Uint8Array {
  if (
    !Number.isInteger(offset) ||
    (offset as number) < 0 ||
    !Number.isInteger(length) ||
    (length as number) < 0
  ) {
    throw codeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'offset and length must be non-negative integers');
  }
  const o = offset as number;
  const n = length as number;
  if (o > b.byteLength)
    throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"offset" is outside of buffer bounds');
  if (o + n > b.byteLength) {
    throw codeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"length" is outside of buffer bounds');
  }
  return b.subarray(o, o + n);
}

const NO_VERIFY = { verifyChecksum: false } as const;
