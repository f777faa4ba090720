import type { IpDelivery } from '@stepwire/ip';
import {
  type TcpEndpoint as TcpAddress,
  TcpConnection,
  type TcpConnectionOptions,
  timestampOffset,
  windowShiftFor,
} from '../connection/index.ts';
import type { FastOpenKeys } from '../fastopen.ts';
import type { TcpOptions } from '../options.ts';
import { ACK, CWR, describeSegment, ECE, RST, SYN, type TcpSegment } from '../segment.ts';
import { SynCookies } from '../syncookie.ts';
import type { TcpListener } from './listener.ts';
import type { Tcb } from './tcb.ts';
import type { EndpointIp } from './types.ts';

/**
 * SEGMENT ARRIVES for a listener (RFC 9293 §3.10.7.2): a SYN makes a connection in the SYN
 * queue, or, with the SYN queue full, a stateless SYN cookie (RFC 4987 §3.6, syncookie.ts)
 * whose returning ACK rebuilds the connection; a full accept queue drops (Linux
 * tcp_abort_on_overflow = 0); Fast Open cookies for listeners that take them (RFC 7413).
 */

const EMPTY = new Uint8Array(0);

/** What LISTEN processing needs of the endpoint. */
export interface PassiveHost {
  readonly ip: EndpointIp;
  readonly synCookies: SynCookies;
  readonly fastOpenKeys: FastOpenKeys;
  connectionOptions(
    local: TcpAddress,
    remote: TcpAddress,
    extra: Partial<TcpConnectionOptions>,
    now: number,
  ): TcpConnectionOptions;
  /** Put a new connection in the table. */
  register(conn: TcpConnection, version: 4 | 6, opts: TcpConnectionOptions): Tcb;
  /** Run `fn` with the connections' trace muted (a connection rebuilt from a cookie replays a SYN). */
  quietly(fn: () => void): void;
  /** Send a segment that belongs to no connection. */
  send(src: string, dst: string, seg: TcpSegment): void;
  /** The RST of RFC 9293 §3.10.7.1 for a segment no one wants. */
  reset(d: IpDelivery, seg: TcpSegment, now: number): void;
  /** Count and trace a drop. */
  dropped(now: number, counter: string, detail: string, rfc: string): void;
}

/** SEGMENT ARRIVES in LISTEN (RFC 9293 §3.10.7.2), with SYN cookies and the queues. */
export function listenerSegment(
  ep: PassiveHost,
  l: TcpListener,
  d: IpDelivery,
  seg: TcpSegment,
  now: number,
): void {
  const ip = ep.ip;
  const f = seg.flags;
  if (f & RST) {
    ep.dropped(now, 'tcp.listen.rst', `RST from ${d.src}:${seg.srcPort}`, 'RFC 9293 §3.10.7.2');
    return;
  }
  const local = { addr: d.dst, port: seg.dstPort };
  const remote = { addr: d.src, port: seg.srcPort };
  if (f & ACK) {
    if (!(f & SYN) && l.synCookies && now - l.lastCookieAt < 2 * 64_000) {
      if (cookieAck(ep, l, d, seg, local, remote, now)) return;
    }
    ep.dropped(
      now,
      'tcp.listen.bad-ack',
      `ACK without a connection from ${d.src}:${seg.srcPort}`,
      'RFC 9293 §3.10.7.2',
    );
    ep.reset(d, seg, now);
    return;
  }
  if (!(f & SYN)) {
    ep.dropped(
      now,
      'tcp.listen.no-syn',
      `${describeSegment(seg)} from ${d.src}:${seg.srcPort}`,
      'RFC 9293 §3.10.7.2',
    );
    return;
  }
  if (l.acceptQueueFull) {
    l.counts.synDropped++;
    ip.counters.inc('tcp.listen.overflow');
    ip.counters.inc('tcp.listen.syn-drop');
    l.note(
      now,
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
      sendCookie(ep, l, d, seg, local, remote, extra, now);
      return;
    }
    l.counts.synDropped++;
    ip.counters.inc('tcp.listen.syn-drop');
    l.note(
      now,
      undefined,
      `SYN from ${d.src}:${seg.srcPort} dropped, SYN queue full`,
      'RFC 4987 §3.1',
      'tcp.listen.syn-drop',
    );
    return;
  }
  if (l.fastOpen) extra.fastOpenServer = ep.fastOpenKeys.serverFor(d.src);
  const opts = ep.connectionOptions(local, remote, extra, now);
  const conn = new TcpConnection(opts);
  const tcb = ep.register(conn, d.version, opts);
  l.addSynReceived(tcb, now);
  conn.listen(now);
  tcb.handle(conn.receive(seg, now), now);
}

/** RFC 4987 §3.6: answer a SYN statelessly, the connection's state encoded in our ISS. */
function sendCookie(
  ep: PassiveHost,
  l: TcpListener,
  d: IpDelivery,
  seg: TcpSegment,
  local: TcpAddress,
  remote: TcpAddress,
  extra: Partial<TcpConnectionOptions>,
  now: number,
): void {
  const opts = ep.connectionOptions(local, remote, extra, now);
  const peerMss = seg.options.mss ?? (d.version === 6 ? 1220 : 536);
  const iss = ep.synCookies.encode(local, remote, seg.seq, peerMss, now);
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
  ep.ip.counters.inc('tcp.syncookie.sent');
  l.note(now, undefined, `SYN queue full: SYN cookie to ${remote.addr}:${remote.port}`, 'RFC 4987 §3.6');
  if (ep.ip.trace.enabled) {
    ep.ip.trace.emit({
      t: now,
      host: ep.ip.name,
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
  ep.send(d.dst, d.src, synAck);
}

/** An ACK for a listener: is it the answer to one of our SYN cookies? */
function cookieAck(
  ep: PassiveHost,
  l: TcpListener,
  d: IpDelivery,
  seg: TcpSegment,
  local: TcpAddress,
  remote: TcpAddress,
  now: number,
): boolean {
  const clientIsn = (seg.seq - 1) >>> 0;
  const cookie = (seg.ack - 1) >>> 0;
  const mss = ep.synCookies.validate(local, remote, clientIsn, cookie, now);
  if (mss === undefined) {
    l.counts.synCookiesRejected++;
    ep.ip.counters.inc('tcp.syncookie.invalid');
    return false;
  }
  const opts = ep.connectionOptions(local, remote, { ...l.connection, iss: cookie }, now);
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
    ep.ip.counters.inc('tcp.listen.overflow');
    l.note(
      now,
      undefined,
      `cookie ACK from ${remote.addr}:${remote.port} dropped, accept queue full`,
      'RFC 4987 §3.6',
      'tcp.listen.overflow',
    );
    return true;
  }
  l.counts.synCookiesValidated++;
  ep.ip.counters.inc('tcp.syncookie.valid');
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
  ep.quietly(() => {
    conn.listen(now);
    conn.receive(syn, now);
  });
  const tcb = ep.register(conn, d.version, opts);
  l.addSynReceived(tcb, now);
  l.note(now, tcb, 'SYN cookie valid: connection rebuilt', 'RFC 4987 §3.6');
  tcb.handle(conn.receive(seg, now), now);
  return true;
}
