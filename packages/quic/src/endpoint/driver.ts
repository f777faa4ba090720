import { Socket as NodeDgramSocket } from 'node:dgram';
import { type Clock, type Timer, TimerGroup } from '@stepwire/wire';
import type { QuicConnection } from '../connection/connection.ts';
import type { QuicConnectionEvent } from '../connection/types.ts';
import type { ConnectOptions, QuicEndpoint, RemoteAddress } from './endpoint.ts';

/**
 * A thin driver: a QuicEndpoint on a datagram socket and a clock. It feeds received
 * datagrams and due timers to the endpoint, sends what it polls, and hands connection
 * events to the application. Any socket shaped like node:dgram's works: node:dgram itself
 * (on loopback in tests) and @stepwire/udp's UdpSocket (on the simulated network or TUN),
 * each with its clock (RealClock or the simulation's VirtualClock). Its one timer goes
 * through a TimerGroup, so `stats().timersArmed` shows a leak.
 */
export interface DatagramSocketLike {
  on(
    event: 'message',
    listener: (msg: Uint8Array, rinfo: { address: string; port: number; ecn?: number }) => void,
  ): unknown;
  send(msg: Uint8Array, port: number, address: string): void;
  /** The IP ECN field of what send() sends next (our UDP has it; node:dgram has not, RFC 9000 §13.4). */
  setEcn?(ecn: number): void;
}

export interface QuicDriverOptions {
  /** A new connection accepted by a server endpoint. */
  onConnection?: (conn: QuicConnection) => void;
  /** Every event of every connection, in order. */
  onEvent?: (conn: QuicConnection, event: QuicConnectionEvent) => void;
  /** After each flush has sent what it could: writers held back by backpressure may go on. */
  onFlushed?: () => void;
  /**
   * Handle every datagram that arrives in one event-loop turn before polling for datagrams
   * to send (one flush per burst instead of one per datagram: one ACK for the burst, one
   * pass over the connections). Defaults to true on a node:dgram socket — libuv hands a
   * burst of up to 32 datagrams to one poll phase, and setImmediate runs after it — and to
   * false elsewhere, where a simulated socket delivers inside its own virtual-time loop and
   * must see the answer in the same step.
   */
  batchReceive?: boolean;
  /**
   * Kernel receive and send buffer size to ask for on a node:dgram socket, bytes (default
   * 4 MiB; Linux caps it at net.core.rmem_max / wmem_max). The default ~208 KiB holds about
   * 170 full datagrams: a congestion window's burst on loopback overflows it, and every
   * overflow is a loss the sender must detect and repair (netstat -su: receive buffer errors).
   */
  socketBufferSize?: number;
}

/**
 * batchReceive flushes at the latest after this many datagrams: one ACK per 8 packets
 * instead of per 2 (quinn and quiche likewise answer a recvmmsg batch at once) keeps most of
 * the saving while the sender still gets a steady ACK clock for its window and loss detection.
 */
export const RECEIVE_BATCH_LIMIT = 8;

/** See QuicDriverOptions.socketBufferSize. */
export const DEFAULT_SOCKET_BUFFER_SIZE = 4 * 1024 * 1024;

export class QuicDriver {
  readonly timers: TimerGroup;
  private timer: Timer | undefined = undefined;
  private timerAt: number | undefined = undefined;
  private flushing = false;
  private again = false;
  private closed = false;
  /** The socket's ECN field was last set to a codepoint (cleared again when a Not-ECT datagram goes). */
  private ecnSet = false;
  /** A flush is scheduled for the end of this event-loop turn (batchReceive). */
  private flushQueued = false;
  /** Datagrams handled since the last flush (batchReceive). */
  private batched = 0;
  datagramsIn = 0;
  /** Flushes run after a burst of received datagrams (batchReceive): below datagramsIn when bursts were batched. */
  receiveBursts = 0;
  datagramsOut = 0;
  /** Wake-ups whose deadline was still due afterwards, in a row; and how often that ran away. */
  private dueAgain = 0;
  stalledTimers = 0;

  /** The socket we send from; rebind() replaces it. */
  get socket(): DatagramSocketLike {
    return this.current;
  }
  private current: DatagramSocketLike;
  /** Sockets we have listened on: a rebind to one of them adds no second listener. */
  private readonly listening = new Set<DatagramSocketLike>();

  constructor(
    readonly endpoint: QuicEndpoint,
    socket: DatagramSocketLike,
    readonly clock: Clock,
    private readonly opts: QuicDriverOptions = {},
  ) {
    this.timers = new TimerGroup(clock);
    this.current = socket;
    this.listen(socket);
  }

  private listen(socket: DatagramSocketLike): void {
    if (this.listening.has(socket)) return;
    this.listening.add(socket);
    const isNodeDgram = socket instanceof NodeDgramSocket;
    if (isNodeDgram) this.sizeBuffers(socket);
    const batch = this.opts.batchReceive ?? isNodeDgram;
    socket.on('message', (msg, rinfo) => {
      if (this.closed) return;
      this.datagramsIn++;
      this.endpoint.handle(
        new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
        { address: rinfo.address, port: rinfo.port },
        this.clock.now(),
        rinfo.ecn,
      );
      if (!batch) this.flush();
      else if (++this.batched >= RECEIVE_BATCH_LIMIT) {
        // A long burst still gets its ACKs every few datagrams: the peer's ACK clock (RFC 9000
        // §13.2.2 asks for one every second ack-eliciting packet) stays close to the RFC's.
        this.receiveBursts++;
        this.flush();
      } else if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => {
          this.flushQueued = false;
          if (this.closed || this.batched === 0) return;
          this.receiveBursts++;
          this.flush();
        });
      }
    });
  }

  /** Asks the kernel for larger socket buffers (see socketBufferSize); once bound, as node requires. */
  private sizeBuffers(socket: NodeDgramSocket): void {
    const size = this.opts.socketBufferSize ?? DEFAULT_SOCKET_BUFFER_SIZE;
    const apply = () => {
      try {
        if (socket.getRecvBufferSize() < size) socket.setRecvBufferSize(size);
        if (socket.getSendBufferSize() < size) socket.setSendBufferSize(size);
      } catch {
        // A closed socket, or a kernel that refuses: the defaults still work, only with more loss.
      }
    };
    try {
      socket.address();
      apply();
    } catch {
      // Not bound yet (address() throws ERR_SOCKET_DGRAM_NOT_RUNNING): size it once it is.
      socket.once('listening', apply);
    }
  }

  /**
   * Client: send from `socket` from now on (a new local address or port). With `migrate`
   * (the default) every client connection migrates on purpose: a new connection ID and a
   * PATH_CHALLENGE (RFC 9000 §9.2, §9.5), fresh congestion state unless `portOnly` (§9.4).
   * With `migrate: false` the connections are not told — what a NAT rebinding looks like to
   * the server (§9.3). The old socket keeps being listened to (packets already on their way
   * still count, and the endpoint routes by connection ID); closing it is the caller's.
   */
  rebind(socket: DatagramSocketLike, opts: { migrate?: boolean; portOnly?: boolean } = {}): void {
    // Connections migrate first: one that may not (disable_active_migration, no unused
    // connection ID) throws before anything is sent from the new socket.
    if (opts.migrate !== false) {
      const now = this.clock.now();
      for (const conn of this.endpoint.connections)
        if (conn.role === 'client' && conn.isHandshakeConfirmed)
          conn.migrate(now, { portOnly: opts.portOnly });
    }
    this.current = socket;
    this.listen(socket);
    this.flush();
  }

  connect(remote: RemoteAddress, opts: ConnectOptions): QuicConnection {
    const conn = this.endpoint.connect(remote, opts, this.clock.now());
    this.flush();
    return conn;
  }

  /**
   * Delivers events, sends every datagram the endpoint has, and re-arms the timer. Call
   * after writing to a connection from outside an event handler.
   */
  flush(): void {
    this.batched = 0;
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.again = false;
        for (let c = this.endpoint.accept(); c; c = this.endpoint.accept()) this.opts.onConnection?.(c);
        for (const conn of [...this.endpoint.connections, ...this.endpoint.takeForgotten()]) {
          for (let e = conn.pollEvent(); e; e = conn.pollEvent()) this.opts.onEvent?.(conn, e);
        }
        const now = this.clock.now();
        for (let t = this.endpoint.pollTransmit(now); t; t = this.endpoint.pollTransmit(now)) {
          this.datagramsOut++;
          try {
            // RFC 9000 §13.4: the ECN codepoint goes down to a socket that can set it.
            if (this.current.setEcn && (t.ecn !== undefined || this.ecnSet)) {
              this.current.setEcn(t.ecn ?? 0);
              this.ecnSet = t.ecn !== undefined;
            }
            this.current.send(t.datagram, t.remote.port, t.remote.address);
          } catch (e) {
            // The socket was closed under us (its owner closed it before the driver): nothing
            // can go out any more, so the driver stops rather than throw from a timer.
            if ((e as { code?: string }).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw e;
            this.close();
            return;
          }
        }
        // A connection that drained while sending is forgotten at once: its last events now.
        for (const conn of this.endpoint.takeForgotten()) {
          for (let e = conn.pollEvent(); e; e = conn.pollEvent()) this.opts.onEvent?.(conn, e);
        }
      } while (this.again && !this.closed);
    } finally {
      this.flushing = false;
    }
    this.opts.onFlushed?.();
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    let at = this.endpoint.pollTimeout();
    // A deadline that fired and is still due (a timer the core did not clear) would spin the
    // event loop, or freeze a virtual clock at one instant: after a few such wake-ups in a
    // row, wait a millisecond, and count it so the stats show the bug.
    const now = this.clock.now();
    if (at !== undefined && at <= now) {
      this.dueAgain++;
      if (this.dueAgain > 16) {
        this.stalledTimers++;
        at = now + 1;
      }
    } else this.dueAgain = 0;
    if (at === this.timerAt) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    this.timer = this.timers.setTimer(at, () => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.endpoint.handleTimeout(this.clock.now());
      this.flush();
    });
  }

  /** Stops the driver: its timer is cancelled; the socket is the caller's to close. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
  }

  stats(): Record<string, unknown> {
    return {
      timersArmed: this.timers.armed,
      stalledTimers: this.stalledTimers,
      datagramsIn: this.datagramsIn,
      datagramsOut: this.datagramsOut,
      receiveBursts: this.receiveBursts,
      endpoint: this.endpoint.stats(),
    };
  }
}
