import type { EcnState } from '../recovery/ecn.ts';
import type { StreamDirection } from '../streams/stream-id.ts';
import type { TransportParameters } from '../transport-parameters.ts';
import type { EndpointEvent } from './cids.ts';
import { close } from './close.ts';
import { ConnectionCore } from './core.ts';
import { startHandshake } from './handshake.ts';
import { initiateKeyUpdate } from './keys.ts';
import { migrate } from './path.ts';
import type { PmtuState } from './pmtu.ts';
import { handle } from './receive.ts';
import { pollTransmit } from './send.ts';
import type { ConnectionState } from './state.ts';
import { handleTimeout, pollTimeout } from './timers.ts';
import type { QuicCloseError, QuicConnectionEvent, QuicConnectionOptions, RemoteAddress } from './types.ts';

export type { EndpointEvent } from './cids.ts';
export { MIN_INITIAL_DATAGRAM } from './core.ts';

/**
 * A QUIC connection, sans-I/O (RFC 9000, 9001, 9002), shaped like quinn-proto's
 * `Connection`: datagrams in with `handle(datagram, now)`, datagrams out with
 * `pollTransmit(now)`, the next deadline from `pollTimeout()` (to be passed back to
 * `handleTimeout(now)`), and events for the application from `pollEvent()`. It owns no
 * socket, timer or clock. Times are milliseconds on the caller's clock.
 *
 * What lives where (this folder): the connection's variables are grouped in core.ts; the
 * functions acting on them are filed by concern — receive.ts (packets in), dispatch.ts
 * (frames in), acks.ts (acknowledgement and loss), send.ts (packets out), keys.ts (spaces,
 * keys, key update), handshake.ts (the TLS bridge and transport parameters), zero-rtt.ts,
 * path.ts (validation, rebinding, migration), close.ts (close, drain, idle, stateless
 * reset) and timers.ts; streams are in stream-set.ts and connection IDs in cids.ts.
 */
export class QuicConnection {
  /** The connection's variables; the functions of this folder act on it. */
  private readonly c: ConnectionCore;

  constructor(opts: QuicConnectionOptions) {
    this.c = new ConnectionCore(opts);
    startHandshake(this.c, opts);
  }

  get role(): 'client' | 'server' {
    return this.c.role;
  }
  get counters(): ConnectionCore['counters'] {
    return this.c.counters;
  }
  /** Our first SCID. */
  get initialLocalCid(): Uint8Array {
    return this.c.initialLocalCid;
  }
  /** The peer's transport parameters, once the handshake has them. */
  get peerParams(): TransportParameters | undefined {
    return this.c.peerParams;
  }
  set peerParams(p: TransportParameters | undefined) {
    this.c.peerParams = p;
  }
  /** Client: the latest NEW_TOKEN token, to pass as `token` to the next connection to this server (RFC 9000 §8.1.3). */
  get receivedToken(): Uint8Array | undefined {
    return this.c.tokens.received;
  }
  /** Where the datagram pollTransmit last returned goes, when not to `remote` (a probe response). */
  get transmitRemote(): RemoteAddress | undefined {
    return this.c.transmitRemote;
  }
  /** The IP ECN codepoint for the datagram pollTransmit last returned (2 = ECT(0), RFC 9000 §13.4). */
  get transmitEcn(): number {
    return this.c.transmitEcn;
  }
  /** The UDP payload size we send now: 1200 (or maxDatagramSize) raised by path MTU discovery (RFC 9000 §14.3). */
  get maxDatagramSize(): number {
    return this.c.pmtu.current;
  }
  /** Path MTU discovery's state (RFC 8899 §5.2). */
  get pmtuState(): PmtuState {
    return this.c.pmtu.state;
  }
  /** ECN validation on the current path (RFC 9000 §13.4.2). */
  get ecnState(): EcnState {
    return this.c.ecn.state;
  }
  /** Our address the datagram pollTransmit last returned leaves from, when the driver said which (RFC 9000 §9.6). */
  get transmitLocal(): RemoteAddress | undefined {
    return this.c.transmitLocal ?? this.c.path.local;
  }
  get closeError(): QuicCloseError | undefined {
    return this.c.closeError;
  }

  get state(): ConnectionState {
    return this.c.state;
  }
  /** Nothing left to do: the endpoint may forget this connection. */
  get isDrained(): boolean {
    return this.c.state === 'closed';
  }
  get isHandshakeConfirmed(): boolean {
    return this.c.hs.confirmed;
  }
  /** Our connection IDs now routed to this connection. */
  get activeLocalCids(): Uint8Array[] {
    return this.c.cids.activeLocal;
  }
  /** The DCID we currently send with. */
  get remoteCid(): Uint8Array {
    return this.c.cids.remote;
  }
  /** Stateless reset tokens the peer issued (RFC 9000 §10.3.1), for the endpoint to recognise a reset. */
  get peerResetTokens(): Uint8Array[] {
    return this.c.cids.peerResetTokens;
  }
  get keyUpdates(): number {
    return this.c.keys.oneRtt?.updates ?? 0;
  }
  /** The peer's address we send to (changes when the peer migrates, RFC 9000 §9). */
  get remote(): RemoteAddress | undefined {
    return this.c.path.remote;
  }

  /** A snapshot of what the connection holds, for stats lines (a leak shows as a number that grows). */
  stats(): Record<string, unknown> {
    const c = this.c;
    return {
      state: c.state,
      congestion: c.congestion,
      streams: c.streamSet.size,
      bytesInFlight: c.recovery.bytesInFlight,
      cwnd: Math.round(c.recovery.cc.congestionWindow),
      srtt: c.recovery.rtt.smoothedRtt,
      sent: c.bytesSent,
      received: c.bytesReceived,
      keyUpdates: this.keyUpdates,
      counters: c.counters.snapshot(),
    };
  }

  // ---- the sans-I/O loop ----

  /** A datagram from the peer; `ecn` is its IP ECN field (0..3) when the driver can read it (RFC 9000 §13.4.1). */
  handle(
    datagram: Uint8Array,
    now: number,
    remote?: RemoteAddress,
    ecn?: number,
    local?: RemoteAddress,
  ): void {
    handle(this.c, datagram, now, remote, ecn, local);
  }

  pollTransmit(now: number): Uint8Array | undefined {
    return pollTransmit(this.c, now);
  }

  pollTimeout(): number | undefined {
    return pollTimeout(this.c);
  }

  handleTimeout(now: number): void {
    handleTimeout(this.c, now);
  }

  pollEvent(): QuicConnectionEvent | undefined {
    const ev = this.c.events.shift();
    if (ev?.type === 'datagram') this.c.dgram.unpolled--;
    return ev;
  }

  /** @internal For the endpoint. */
  pollEndpointEvent(): EndpointEvent | undefined {
    return this.c.cids.endpointEvents.shift();
  }

  // ---- DATAGRAM (RFC 9221) ----

  /**
   * The largest payload sendDatagram takes now: bounded by the peer's
   * max_datagram_frame_size (RFC 9221 §3) and by one packet (§5: a DATAGRAM frame is never
   * split); 0 when the peer did not advertise DATAGRAM support or its parameters are not known yet.
   */
  get maxDatagramPayload(): number {
    return this.c.maxDatagramPayload;
  }

  /**
   * Queues an unreliable DATAGRAM frame (RFC 9221 §5): sent once in a 1-RTT packet, counted
   * in congestion control (§5.4), never retransmitted. Throws when the peer did not advertise
   * max_datagram_frame_size or the frame would not fit. Beyond the queue limit the oldest
   * queued payload is dropped.
   */
  sendDatagram(data: Uint8Array): void {
    const c = this.c;
    c.assertLive();
    const max = c.maxDatagramPayload;
    if (max === 0) throw new Error('the peer does not accept DATAGRAM frames (RFC 9221 §3)');
    if (data.length > max)
      throw new Error(`DATAGRAM payload of ${data.length} bytes exceeds ${max} (RFC 9221 §3)`);
    if (c.dgram.out.length >= c.dgram.limit) {
      c.dgram.out.shift();
      c.counters.inc('quic.tx.datagram.dropped');
    }
    c.dgram.out.push(data.slice());
  }

  // ---- streams (RFC 9000 §2-§4) ----

  /** Opens a stream of ours (RFC 9000 §2.1); throws when the peer's MAX_STREAMS does not allow it. */
  openStream(direction: StreamDirection): number {
    this.c.assertLive();
    return this.c.streamSet.open(direction);
  }

  /** Whether openStream(direction) would succeed now. */
  canOpenStream(direction: StreamDirection): boolean {
    return this.c.isLive && this.c.streamSet.canOpen(direction);
  }

  write(id: number, data: Uint8Array, fin = false): void {
    this.c.assertLive();
    this.c.streamSet.write(id, data, fin);
  }

  /**
   * Bytes written on a stream that have not been sent yet: what a writer watches for
   * backpressure (sent bytes are bounded by the peer's flow control; these only by us).
   */
  streamUnsent(id: number): number {
    return this.c.streamSet.unsent(id);
  }

  /** RESET_STREAM (RFC 9000 §19.4): abandon sending on a stream. */
  resetStream(id: number, code: number): void {
    this.c.streamSet.reset(id, code);
  }

  /** STOP_SENDING (RFC 9000 §19.5): ask the peer to stop sending on a stream. */
  stopSending(id: number, code: number): void {
    this.c.streamSet.stopSending(id, code);
  }

  // ---- the rest of the application's calls ----

  /** Sends a PING (RFC 9000 §19.2) in the highest space with keys. */
  ping(): void {
    const { spaces } = this.c;
    const s = this.c.keys.oneRtt
      ? spaces.ApplicationData
      : spaces.Handshake.tx
        ? spaces.Handshake
        : spaces.Initial;
    s.probes = Math.max(s.probes, 1);
  }

  /** Starts a 1-RTT key update (RFC 9001 §6.1); false when not allowed yet. */
  initiateKeyUpdate(now: number): boolean {
    return initiateKeyUpdate(this.c, now);
  }

  /**
   * Client: we are moving to a new local address (RFC 9000 §9.2); see path.ts. Throws
   * before the handshake is confirmed, when the server sent disable_active_migration, or
   * when it has issued no unused connection ID.
   */
  migrate(now: number, opts: { portOnly?: boolean } = {}): void {
    migrate(this.c, now, opts);
  }

  /**
   * Closes the connection (RFC 9000 §10.2): CONNECTION_CLOSE of type 0x1d with an
   * application error code, or of type 0x1c with a transport code when `application` is false.
   */
  close(now: number, code = 0, reason = '', application = true): void {
    close(this.c, now, code, reason, application);
  }
}
