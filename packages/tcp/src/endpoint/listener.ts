import type { TraceBus } from '@stepwire/wire';
import type { TcpConnectionOptions } from '../connection/index.ts';
import type { Tcb } from './tcb.ts';

/** What a listener needs to trace its queues: the host's name and trace bus (no clock). */
export interface ListenerTraceTarget {
  readonly name: string;
  readonly trace: TraceBus;
}

/**
 * A passive open (RFC 9293 §3.10.1) on (address, port) and its two queues, as Linux keeps
 * them:
 *
 * - the SYN queue: connections in SYN-RECEIVED, waiting for the final ACK of the handshake;
 * - the accept queue: connections ESTABLISHED (or carrying Fast Open data, RFC 7413 §4.2)
 *   that the application has not accepted yet.
 *
 * Both are bounded by the backlog. When the SYN queue is full the listener answers with SYN
 * cookies (RFC 4987 §3.6, src/syncookie.ts) if enabled, else it drops the SYN; when the
 * accept queue is full it drops SYNs and the final ACKs of handshakes (the peer retransmits;
 * by then the application may have made room), as Linux does with tcp_abort_on_overflow=0.
 *
 * Every move (SYN-RECEIVED -> accept queue -> accepted) is a trace note with the queue
 * lengths, so a reader can watch a SYN flood fill them.
 *
 * Sans-I/O like the rest of the endpoint: every method that traces takes `now`; telling the
 * application that the accept queue gained a connection is the driver's job (it watches
 * `onAcceptable` and `acceptScheduled`).
 */
export interface TcpListenOptions {
  /** '0.0.0.0', '::' (both families unless ipv6Only) or one of the host's addresses. */
  address: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /** Bound on each queue. Default 511 (Node's default). */
  backlog?: number;
  /** With address '::', accept IPv6 only (IPV6_V6ONLY). */
  ipv6Only?: boolean;
  /** Answer with SYN cookies when the SYN queue is full (RFC 4987 §3.6). Default true. */
  synCookies?: boolean;
  /** Accept TCP Fast Open (RFC 7413): give cookies, take data in SYNs. Default false. */
  fastOpen?: boolean;
  /** Options for the connections this listener creates (noDelay, keepalive, buffers, ...). */
  connection?: Partial<TcpConnectionOptions>;
}

export interface TcpListenerStats {
  address: string;
  port: number;
  backlog: number;
  synQueue: number;
  acceptQueue: number;
  /** SYNs answered with a cookie, cookies accepted, cookies refused. */
  synCookiesSent: number;
  synCookiesValidated: number;
  synCookiesRejected: number;
  /** SYNs dropped (accept queue full, or SYN queue full without cookies). */
  synDropped: number;
  /** Final ACKs dropped because the accept queue was full. */
  acceptOverflows: number;
  accepted: number;
}

export class TcpListener {
  readonly address: string;
  port: number;
  readonly backlog: number;
  readonly ipv6Only: boolean;
  readonly synCookies: boolean;
  readonly fastOpen: boolean;
  readonly connection: Partial<TcpConnectionOptions>;
  /** @internal Connections in SYN-RECEIVED, by 4-tuple key. */
  readonly synQueue = new Map<string, Tcb>();
  /** @internal Connections waiting for accept(), oldest first. */
  readonly acceptQueue: Tcb[] = [];
  /** @internal Time of the last SYN cookie sent; cookies are checked only while recent. */
  lastCookieAt = Number.NEGATIVE_INFINITY;
  closed = false;
  /** Called (at most once per clock tick, by the driver) when the accept queue gains a connection. */
  onAcceptable: (() => void) | undefined;
  /** @internal The driver has a call to onAcceptable pending. */
  acceptScheduled = false;
  readonly counts = {
    synCookiesSent: 0,
    synCookiesValidated: 0,
    synCookiesRejected: 0,
    synDropped: 0,
    acceptOverflows: 0,
    accepted: 0,
  };

  constructor(
    private readonly host: ListenerTraceTarget,
    opts: TcpListenOptions,
  ) {
    this.address = opts.address;
    this.port = opts.port;
    this.backlog = Math.max(1, Math.floor(opts.backlog ?? 511));
    this.ipv6Only = opts.ipv6Only === true;
    this.synCookies = opts.synCookies ?? true;
    this.fastOpen = opts.fastOpen === true;
    this.connection = opts.connection ?? {};
  }

  get family(): 'IPv4' | 'IPv6' {
    return this.address.includes(':') ? 'IPv6' : 'IPv4';
  }

  /** Does a segment to (version, dst) reach this listener? Exact address, or a wildcard. */
  matches(version: 4 | 6, dst: string): boolean {
    if (this.address === dst) return true;
    if (this.address === '0.0.0.0') return version === 4;
    if (this.address === '::') return version === 6 || !this.ipv6Only;
    return false;
  }

  get synQueueFull(): boolean {
    return this.synQueue.size >= this.backlog;
  }

  get acceptQueueFull(): boolean {
    return this.acceptQueue.length >= this.backlog;
  }

  get stats(): TcpListenerStats {
    return {
      address: this.address,
      port: this.port,
      backlog: this.backlog,
      synQueue: this.synQueue.size,
      acceptQueue: this.acceptQueue.length,
      ...this.counts,
    };
  }

  /** @internal A new connection in SYN-RECEIVED. */
  addSynReceived(tcb: Tcb, now: number): void {
    this.synQueue.set(tcb.key, tcb);
    tcb.listener = this;
    tcb.queue = 'syn';
    this.note(now, tcb, 'SYN-RECEIVED: into the SYN queue', 'RFC 9293 §3.10.7.2');
  }

  /** @internal The handshake completed (or Fast Open data came): move to the accept queue. */
  promote(tcb: Tcb, why: string, now: number): void {
    if (tcb.queue === 'syn') this.synQueue.delete(tcb.key);
    tcb.queue = 'accept';
    tcb.listener = this;
    this.acceptQueue.push(tcb);
    this.note(now, tcb, `${why}: SYN queue -> accept queue`, 'RFC 9293 §3.10.7.4');
  }

  /** @internal A connection that closed before being accepted leaves its queue. */
  remove(tcb: Tcb, now: number): void {
    if (tcb.queue === 'syn') this.synQueue.delete(tcb.key);
    else if (tcb.queue === 'accept') {
      const i = this.acceptQueue.indexOf(tcb);
      if (i >= 0) this.acceptQueue.splice(i, 1);
    }
    if (tcb.queue) this.note(now, tcb, `closed while in the ${tcb.queue} queue`, 'RFC 9293 §3.10.7.4');
    tcb.queue = undefined;
    tcb.listener = undefined;
  }

  /** Take the oldest connection of the accept queue (the accept() call). */
  accept(now: number): Tcb | undefined {
    const tcb = this.acceptQueue.shift();
    if (!tcb) return undefined;
    tcb.queue = undefined;
    tcb.listener = undefined;
    this.counts.accepted++;
    this.note(now, tcb, 'accepted: accept queue -> application', 'RFC 9293 §3.10.1');
    return tcb;
  }

  /** @internal A trace note about this listener and one of its connections. */
  note(now: number, tcb: Tcb | undefined, text: string, rfc: string, reason?: string): void {
    const trace = this.host.trace;
    if (!trace.enabled) return;
    const who = tcb ? ` ${tcb.conn.remote.addr}:${tcb.conn.remote.port}` : '';
    trace.emit({
      t: now,
      host: this.host.name,
      layer: 'tcp',
      dir: reason ? 'drop' : 'local',
      summary: `listen ${this.address}:${this.port}${who} ${text} (syn ${this.synQueue.size}/${this.backlog}, accept ${this.acceptQueue.length}/${this.backlog})`,
      fields: {
        listener: `${this.address}:${this.port}`,
        synQueue: this.synQueue.size,
        acceptQueue: this.acceptQueue.length,
        backlog: this.backlog,
        ...(tcb ? { remote: `${tcb.conn.remote.addr}:${tcb.conn.remote.port}` } : {}),
      },
      rfc,
      ...(reason ? { reason } : {}),
    });
  }
}
