import type { TcpEndpoint as TcpAddress, TcpConnection, TcpEvent, TcpOutput } from '../connection/index.ts';
import type { TcpErrorCode, TcpSystemError } from '../errors.ts';
import type { TcpListener } from './listener.ts';

/** Who hears a connection's events: a socket, until it lets go (then the connection is an orphan). */
export interface TcbOwner {
  onTcpEvent(e: TcpEvent, tcb: Tcb): void;
}

/** What a Tcb hands its output to (the endpoint; an interface so this file imports no class). */
export interface TcbHost {
  output(tcb: Tcb, out: TcpOutput, now: number): void;
}

/**
 * The endpoint's record of one connection (a "transmission control block" in RFC 9293
 * §3.3.1 terms, wrapped around the sans-I/O TcpConnection): its 4-tuple, who owns it,
 * which listener queue holds it, what ICMP said about it, and the deadline it last asked
 * its driver to wake it at.
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
  /**
   * @internal The deadline the driver was last asked to wake this connection at; undefined
   * when no wake-up is pending. A later deadline leaves an earlier wake-up alone (it fires
   * early and is re-armed), so a busy connection does not cost a timer per ACK.
   */
  wakeAt: number | undefined;
  /** @internal The driver's handle for that wake-up (opaque to the endpoint). */
  wakeHandle: { cancel(): void } | undefined;
  /**
   * @internal Local and remote address as bytes, parsed once by the driver: every segment's
   * pseudo-header sum and IP header come from them instead of a lookup of the text per
   * segment. Undefined until the first segment (or when the text does not parse).
   */
  addressBytes: { src: Uint8Array; dst: Uint8Array } | undefined = undefined;
  /** The connection's sendHighWater: above it, it reports 'writable' when it drains. */
  readonly sendHighWater: number;

  constructor(
    private readonly host: TcbHost,
    readonly conn: TcpConnection,
    readonly key: string,
    readonly version: 4 | 6,
    sendHighWater: number | undefined,
  ) {
    this.sendHighWater = sendHighWater ?? 256 * 1024;
  }

  get local(): TcpAddress {
    return this.conn.local;
  }

  get remote(): TcpAddress {
    return this.conn.remote;
  }

  /** Send a call's output (made at `now`), dispatch its events and ask for the next wake-up. */
  handle(out: TcpOutput, now: number): void {
    this.host.output(this, out, now);
  }
}
