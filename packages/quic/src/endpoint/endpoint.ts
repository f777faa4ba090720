import { webcrypto } from 'node:crypto';
import {
  ByteReader,
  ByteWriter,
  bytesEqual,
  Counters,
  silentTrace,
  type TraceBus,
  toHex,
  utf8,
} from '@stepwire/wire';
import { QuicConnection } from '../connection/connection.ts';
import type { QuicConnectionOptions, RemoteAddress, TransportConfig } from '../connection/types.ts';
import { nodeQuicCrypto, type QuicCrypto } from '../crypto/keys.ts';
import { buildRetry } from '../crypto/retry.ts';
import {
  encodeVersionNegotiation,
  HEADER_FORM_BIT,
  LONG_PACKET_TYPE_MASK,
  MAX_CID_LENGTH,
  parseProtectedHeader,
  QUIC_VERSION_1,
  VERSION_NEGOTIATION,
} from '../packet/header.ts';
import {
  encodeStatelessReset,
  isStatelessReset,
  MIN_STATELESS_RESET_LENGTH,
} from '../packet/stateless-reset.ts';
import type { QuicTls } from '../tls/types.ts';
import type { TransportParameters } from '../transport-parameters.ts';

/**
 * The endpoint (quinn-proto's `Endpoint`): one UDP socket's worth of QUIC. It routes each
 * datagram to its connection by Destination Connection ID (RFC 9000 §5.2), accepts new
 * connections from client Initials (§5.2.2) — optionally after a Retry that proves the
 * client's address (§8.1.2) — answers unknown versions with Version Negotiation (§6.1) and
 * packets for connections it does not know with a Stateless Reset (§10.3). Sans-I/O like the
 * connection: `handle(datagram, remote, now)`, `pollTransmit(now)`, `pollTimeout()`,
 * `handleTimeout(now)`; the drivers in driver.ts own the socket and the clock.
 */

export type { RemoteAddress } from '../connection/types.ts';

export interface Transmit {
  datagram: Uint8Array;
  remote: RemoteAddress;
  /**
   * The IP ECN codepoint to send it with (RFC 3168 §5; 2 = ECT(0)) when the connection
   * validates ECN (TransportConfig.ecn, RFC 9000 §13.4.2); absent means Not-ECT.
   */
  ecn?: number;
  /**
   * Our address to send it from, when the driver reported the one each datagram arrived on
   * (handle's `local`) and it is not the only one: a server with a preferred address
   * (RFC 9000 §9.6) answers from where the client now reaches it.
   */
  local?: RemoteAddress;
}

export interface QuicServerConfig {
  /** Builds the server's TLS side given our encoded transport parameters. */
  tls: (transportParameters: Uint8Array) => QuicTls;
  transport?: Partial<TransportConfig>;
  /** Validate client addresses with a Retry before creating any state (RFC 9000 §8.1.2). */
  retry?: boolean;
  /** Connections held at once; Initials beyond it are dropped (counted). */
  maxConnections?: number;
  /** Congestion controller and pacing of accepted connections (QuicConnectionOptions; CUBIC and pacing by default). */
  congestion?: 'newreno' | 'cubic';
  pacing?: boolean;
  /**
   * Advertise a preferred address (RFC 9000 §9.6, §18.2) to every client: it moves there
   * after the handshake. The driver must receive on it too, and pass each datagram's
   * local address to handle() so that answers leave from it.
   */
  preferredAddress?: { ipv4?: RemoteAddress; ipv6?: RemoteAddress };
}

export interface QuicEndpointOptions {
  crypto?: QuicCrypto;
  random?: (n: number) => Uint8Array;
  /** Length of the connection IDs this endpoint issues (short headers are routed by it). */
  localCidLength?: number;
  server?: QuicServerConfig;
  /** Key for stateless reset tokens and Retry tokens; random by default. */
  secret?: Uint8Array;
  trace?: TraceBus;
  host?: string;
  /** The peer's host name in trace events (a ladder draws the arrow to it). */
  peer?: string;
  /** Passed to each connection: calendar milliseconds at now = 0, for TLS. */
  tlsEpoch?: number;
  /** Lifetime of a Retry token, ms (RFC 9000 §8.1.3 leaves it to the server). */
  retryTokenLifetime?: number;
  /** Lifetime of a NEW_TOKEN token, ms (default one hour). */
  newTokenLifetime?: number;
  /**
   * At most this many Stateless Resets per `statelessResetInterval` ms (RFC 9000 §10.3.3
   * leaves the bound to us: a flood of short packets for unknown connections must not
   * become a flood of answers). Default 16 per 100 ms; the rest are counted and dropped.
   */
  statelessResetLimit?: number;
  statelessResetInterval?: number;
}

export interface ConnectOptions {
  tls: (transportParameters: Uint8Array) => QuicTls;
  transport?: Partial<TransportConfig>;
  /** The DCID of the first Initial; random by default. */
  initialDcid?: Uint8Array;
  /** The server's transport parameters remembered with a session ticket, for 0-RTT (RFC 9000 §7.4.1). */
  earlyTransportParameters?: TransportParameters;
  /** A token from the server's NEW_TOKEN on an earlier connection (RFC 9000 §8.1.3). */
  token?: Uint8Array;
  /** Congestion controller and pacing (QuicConnectionOptions; CUBIC and pacing by default). */
  congestion?: 'newreno' | 'cubic';
  pacing?: boolean;
}

interface Entry {
  conn: QuicConnection;
  remote: RemoteAddress;
  /** Every routing key (hex CID) that points here, to forget them together. */
  keys: Set<string>;
}

/** Datagrams the endpoint itself sends (Version Negotiation, Retry, Stateless Reset) wait here, bounded. */
const MAX_STATELESS_QUEUE = 64;
const DEFAULT_MAX_CONNECTIONS = 1024;
/** The first byte of our address validation tokens says which kind it is (RFC 9000 §8.1.1 asks they be told apart). */
const TOKEN_RETRY = 0x00;
const TOKEN_NEW_TOKEN = 0x01;

function defaultRandom(n: number): Uint8Array {
  return webcrypto.getRandomValues(new Uint8Array(n));
}

/** Forgotten connections kept for their last events until a driver takes them. */
const MAX_FORGOTTEN = 1024;

export class QuicEndpoint {
  readonly counters = new Counters();
  private readonly qc: QuicCrypto;
  private readonly random: (n: number) => Uint8Array;
  private readonly cidLength: number;
  private readonly secret: Uint8Array;
  private readonly trace: TraceBus;
  private readonly host: string;
  private readonly peer: string | undefined;
  private readonly server: QuicServerConfig | undefined;
  private readonly tokenLifetime: number;
  private readonly newTokenLifetime: number;
  private readonly tlsEpoch: number;
  private readonly byCid = new Map<string, Entry>();
  private readonly entries: Entry[] = [];
  private readonly statelessQueue: Transmit[] = [];
  private readonly accepted: QuicConnection[] = [];
  private next = 0;
  /** Stateless Resets sent in the current interval, and when it started (RFC 9000 §10.3.3). */
  private readonly resetBudget: { limit: number; interval: number; windowStart: number; sent: number };

  constructor(opts: QuicEndpointOptions = {}) {
    this.qc = opts.crypto ?? nodeQuicCrypto;
    this.random = opts.random ?? defaultRandom;
    this.cidLength = opts.localCidLength ?? 8;
    if (this.cidLength < 1 || this.cidLength > MAX_CID_LENGTH)
      throw new RangeError('localCidLength is 1..20');
    this.secret = opts.secret ?? this.random(32);
    this.trace = opts.trace ?? silentTrace;
    this.host = opts.host ?? 'quic';
    this.peer = opts.peer;
    this.server = opts.server;
    this.tokenLifetime = opts.retryTokenLifetime ?? 10_000;
    this.newTokenLifetime = opts.newTokenLifetime ?? 3_600_000;
    this.tlsEpoch = opts.tlsEpoch ?? 0;
    this.resetBudget = {
      limit: opts.statelessResetLimit ?? 16,
      interval: opts.statelessResetInterval ?? 100,
      windowStart: Number.NEGATIVE_INFINITY,
      sent: 0,
    };
  }

  /** Connections now held (live, closing or draining). */
  get connections(): QuicConnection[] {
    return this.entries.map((e) => e.conn);
  }

  remoteOf(conn: QuicConnection): RemoteAddress | undefined {
    const e = this.entries.find((x) => x.conn === conn);
    return e ? (e.conn.remote ?? e.remote) : undefined;
  }

  stats(): Record<string, unknown> {
    return {
      connections: this.entries.length,
      routes: this.byCid.size,
      queued: this.statelessQueue.length,
      counters: this.counters.snapshot(),
    };
  }

  /** Server: the next connection accepted from a client Initial. */
  accept(): QuicConnection | undefined {
    return this.accepted.shift();
  }

  /** Client: starts a connection to `remote`. */
  connect(remote: RemoteAddress, opts: ConnectOptions, now: number): QuicConnection {
    const conn = new QuicConnection({
      ...this.connectionBase(),
      role: 'client',
      now,
      remote,
      tls: opts.tls,
      ...(opts.transport ? { transport: opts.transport } : {}),
      ...(opts.initialDcid ? { initialDcid: opts.initialDcid } : {}),
      ...(opts.earlyTransportParameters ? { earlyTransportParameters: opts.earlyTransportParameters } : {}),
      ...(opts.token ? { token: opts.token } : {}),
      ...(opts.congestion ? { congestion: opts.congestion } : {}),
      ...(opts.pacing !== undefined ? { pacing: opts.pacing } : {}),
    });
    this.register(conn, remote, []);
    return conn;
  }

  private connectionBase(): Pick<
    QuicConnectionOptions,
    'crypto' | 'random' | 'localCidLength' | 'resetTokenFor' | 'trace' | 'host' | 'tlsEpoch' | 'peer'
  > {
    return {
      tlsEpoch: this.tlsEpoch,
      crypto: this.qc,
      random: this.random,
      localCidLength: this.cidLength,
      resetTokenFor: (cid) => this.resetToken(cid),
      trace: this.trace,
      host: this.host,
      ...(this.peer ? { peer: this.peer } : {}),
    };
  }

  private register(conn: QuicConnection, remote: RemoteAddress, extraKeys: Uint8Array[]): Entry {
    const entry: Entry = { conn, remote: { ...remote }, keys: new Set() };
    this.entries.push(entry);
    for (const cid of [...conn.activeLocalCids, ...extraKeys]) this.route(entry, cid);
    return entry;
  }

  private route(entry: Entry, cid: Uint8Array): void {
    const k = toHex(cid);
    entry.keys.add(k);
    this.byCid.set(k, entry);
  }

  /** RFC 9000 §10.3.2: a token the peer cannot predict, derived from a static key and the connection ID. */
  private resetToken(cid: Uint8Array): Uint8Array {
    return this.qc.crypto.hmac('sha256', this.secret, cid).subarray(0, 16);
  }

  // ---- receiving ----

  /**
   * A datagram from `remote`; `ecn` is its IP ECN field when the socket reports it (RFC 9000
   * §13.4.1), `local` the address it arrived on when we have more than one (§9.6).
   */
  handle(
    datagram: Uint8Array,
    remote: RemoteAddress,
    now: number,
    ecn?: number,
    local?: RemoteAddress,
  ): void {
    if (datagram.length === 0) return;
    const long = ((datagram[0] ?? 0) & HEADER_FORM_BIT) !== 0;
    let dcid: Uint8Array | undefined;
    let version = QUIC_VERSION_1;
    let scid: Uint8Array = new Uint8Array(0);
    if (long) {
      if (datagram.length < 7) {
        this.drop(now, 'quic.endpoint.short-datagram');
        return;
      }
      const r = new ByteReader(datagram, 'quic');
      try {
        r.u8('firstByte');
        version = r.u32('version');
        const dl = r.u8('dcidLength');
        dcid = r.copy(dl, 'dcid');
        const sl = r.u8('scidLength');
        scid = r.copy(sl, 'scid');
      } catch {
        this.drop(now, 'quic.endpoint.malformed-header');
        return;
      }
    } else {
      if (datagram.length < 1 + this.cidLength) {
        this.drop(now, 'quic.endpoint.short-datagram');
        return;
      }
      dcid = datagram.subarray(1, 1 + this.cidLength);
    }
    const entry = this.byCid.get(toHex(dcid));
    if (entry) {
      entry.conn.handle(datagram, now, remote, ecn, local);
      this.afterConnection(entry);
      return;
    }
    if (!long) {
      // RFC 9000 §10.3.1: a Stateless Reset carries no connection ID of ours; its last 16
      // bytes are checked against the tokens of the connections with that peer.
      for (const e of this.entries) {
        const r = e.conn.remote ?? e.remote;
        if (r.address !== remote.address || r.port !== remote.port) continue;
        if (!isStatelessReset(datagram, e.conn.peerResetTokens)) continue;
        this.counters.inc('quic.endpoint.stateless-reset-received');
        e.conn.handle(datagram, now, remote, ecn, local);
        this.afterConnection(e);
        return;
      }
      this.maybeStatelessReset(datagram, dcid, remote, now);
      return;
    }
    if (version === VERSION_NEGOTIATION) {
      this.drop(now, 'quic.endpoint.stray-version-negotiation');
      return;
    }
    if (version !== QUIC_VERSION_1) {
      // RFC 9000 §6.1: a server answers an unknown version with Version Negotiation, only for
      // datagrams big enough to be a client's first (§14.1), so it cannot amplify.
      if (!this.server || datagram.length < 1200) {
        this.drop(now, 'quic.endpoint.unknown-version');
        return;
      }
      if (dcid.length > 255 || scid.length > 255) return;
      const vn = encodeVersionNegotiation({
        type: 'VersionNegotiation',
        unusedBits: (this.random(1)[0] ?? 0) & 0x7f,
        dcid: scid,
        scid: dcid,
        supportedVersions: [QUIC_VERSION_1],
      });
      this.queue(
        vn,
        remote,
        now,
        `VersionNegotiation versions=1 (client offered 0x${version.toString(16)})`,
        'RFC 9000 §6.1',
      );
      return;
    }
    const type = ((datagram[0] as number) & LONG_PACKET_TYPE_MASK) >> 4;
    if (!this.server || type !== 0) {
      this.drop(now, 'quic.endpoint.no-connection');
      return;
    }
    this.acceptInitial(datagram, dcid, scid, remote, now, this.server, ecn, local);
  }

  private acceptInitial(
    datagram: Uint8Array,
    dcid: Uint8Array,
    scid: Uint8Array,
    remote: RemoteAddress,
    now: number,
    server: QuicServerConfig,
    ecn: number | undefined,
    local: RemoteAddress | undefined,
  ): void {
    // RFC 9000 §14.1: a server discards an Initial in a datagram smaller than 1200 bytes.
    if (datagram.length < 1200) {
      this.drop(now, 'quic.endpoint.initial-too-small');
      return;
    }
    // RFC 9000 §7.2: the client's first DCID is at least 8 bytes.
    if (dcid.length < 8) {
      this.drop(now, 'quic.endpoint.initial-dcid-too-short');
      return;
    }
    if (this.entries.length >= (server.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.drop(now, 'quic.endpoint.connection-limit');
      return;
    }
    let token: Uint8Array;
    try {
      token = parseProtectedHeader(datagram, this.cidLength).token;
    } catch {
      this.drop(now, 'quic.endpoint.malformed-initial');
      return;
    }
    let originalDcid = dcid;
    let retrySourceCid: Uint8Array | undefined;
    let validated = false;
    // A NEW_TOKEN token from an earlier connection proves the address (RFC 9000 §8.1.3); an
    // invalid one is as good as none ("proceed as if the client did not have a validated address").
    if (token[0] === TOKEN_NEW_TOKEN) {
      validated = this.checkNewToken(token, remote, now);
      this.counters.inc(validated ? 'quic.endpoint.new-token-valid' : 'quic.endpoint.new-token-invalid');
    }
    if (server.retry && !validated) {
      if (token[0] !== TOKEN_RETRY) {
        // RFC 9000 §8.1.2: no state yet; a Retry with a token only we can make.
        const newScid = this.random(this.cidLength);
        const retry = buildRetry(this.qc.crypto, dcid, {
          version: QUIC_VERSION_1,
          unusedBits: 0,
          dcid: scid,
          scid: newScid,
          retryToken: this.makeToken(dcid, newScid, remote, now),
        });
        this.queue(retry, remote, now, `Retry scid=${toHex(newScid)}`, 'RFC 9000 §8.1.2');
        return;
      }
      const odcid = this.checkToken(token, dcid, remote, now);
      // §8.1.3: an invalid Retry token may be dropped (a stale token and an attack look alike).
      if (!odcid) {
        this.drop(now, 'quic.endpoint.invalid-token');
        return;
      }
      originalDcid = odcid;
      retrySourceCid = dcid;
      validated = true;
    }
    const conn = new QuicConnection({
      ...this.connectionBase(),
      role: 'server',
      now,
      remote,
      tls: server.tls,
      ...(server.transport ? { transport: server.transport } : {}),
      ...(server.congestion ? { congestion: server.congestion } : {}),
      ...(server.pacing !== undefined ? { pacing: server.pacing } : {}),
      newToken: () => this.newToken(remote, now),
      server: {
        originalDcid,
        initialDcid: dcid,
        clientScid: scid,
        ...(retrySourceCid ? { retrySourceCid } : {}),
        ...(server.preferredAddress ? { preferredAddress: server.preferredAddress } : {}),
        addressValidated: validated,
      },
    });
    // The client keeps using the DCID it chose until it sees our SCID (RFC 9000 §7.2): route both.
    const entry = this.register(conn, remote, [dcid]);
    this.counters.inc('quic.endpoint.accepted');
    this.accepted.push(conn);
    conn.handle(datagram, now, remote, ecn, local);
    this.afterConnection(entry);
  }

  /**
   * Retry token: issued time, the original DCID and the Retry's SCID, bound to the client's
   * address by an HMAC (RFC 9000 §8.1.4: "constructed in a way that allows the server to
   * identify how it was provided to a client"). Not encrypted: it holds nothing secret.
   */
  private makeToken(
    odcid: Uint8Array,
    retryScid: Uint8Array,
    remote: RemoteAddress,
    now: number,
  ): Uint8Array {
    const w = new ByteWriter(64);
    w.u8(TOKEN_RETRY);
    w.u32(Math.floor(now / 2 ** 32) >>> 0).u32(Math.floor(now) >>> 0);
    w.u8(odcid.length).bytes(odcid);
    w.u8(retryScid.length).bytes(retryScid);
    const body = w.finish().slice();
    const mac = this.tokenMac(body, remote);
    const out = new Uint8Array(body.length + mac.length);
    out.set(body);
    out.set(mac, body.length);
    return out;
  }

  /**
   * A NEW_TOKEN token (RFC 9000 §8.1.3, §19.7): its kind, when it was issued, and an HMAC
   * binding it to the client's IP address (not the port: a NAT may give the next connection
   * another one).
   */
  newToken(remote: RemoteAddress, now: number): Uint8Array {
    const w = new ByteWriter(32);
    w.u8(TOKEN_NEW_TOKEN)
      .u32(Math.floor(now / 2 ** 32) >>> 0)
      .u32(Math.floor(now) >>> 0);
    const body = w.finish().slice();
    const mac = this.tokenMac(body, { address: remote.address, port: 0 });
    const out = new Uint8Array(body.length + mac.length);
    out.set(body);
    out.set(mac, body.length);
    return out;
  }

  private checkNewToken(token: Uint8Array, remote: RemoteAddress, now: number): boolean {
    if (token.length !== 9 + 16) return false;
    const body = token.subarray(0, 9);
    if (!bytesEqual(this.tokenMac(body, { address: remote.address, port: 0 }), token.subarray(9)))
      return false;
    const issued =
      ((body[1] ?? 0) * 2 ** 24 + ((body[2] ?? 0) << 16) + ((body[3] ?? 0) << 8) + (body[4] ?? 0)) * 2 ** 32 +
      ((body[5] ?? 0) * 2 ** 24 + ((body[6] ?? 0) << 16) + ((body[7] ?? 0) << 8) + (body[8] ?? 0));
    return now - issued <= this.newTokenLifetime && issued <= now + 1;
  }

  private tokenMac(body: Uint8Array, remote: RemoteAddress): Uint8Array {
    const addr = utf8(`${remote.address}|${remote.port}|`);
    const data = new Uint8Array(addr.length + body.length);
    data.set(addr);
    data.set(body, addr.length);
    return this.qc.crypto.hmac('sha256', this.secret, data).subarray(0, 16);
  }

  private checkToken(
    token: Uint8Array,
    dcid: Uint8Array,
    remote: RemoteAddress,
    now: number,
  ): Uint8Array | undefined {
    if (token.length < 16 + 10) return undefined;
    const body = token.subarray(0, token.length - 16);
    const mac = token.subarray(token.length - 16);
    if (!bytesEqual(this.tokenMac(body, remote), mac)) return undefined;
    try {
      const r = new ByteReader(body, 'quic-token');
      if (r.u8('kind') !== TOKEN_RETRY) return undefined;
      const issued = r.u32('hi') * 2 ** 32 + r.u32('lo');
      const odcid = r.copy(r.u8('odcidLength'), 'odcid');
      const retryScid = r.copy(r.u8('scidLength'), 'scid');
      if (now - issued > this.tokenLifetime || issued > now + 1) return undefined;
      // The client must use the Retry's SCID as its DCID (RFC 9000 §17.2.5.2).
      if (!bytesEqual(retryScid, dcid)) return undefined;
      return odcid;
    } catch {
      return undefined;
    }
  }

  /**
   * RFC 9000 §10.3: a short-header packet for a connection we do not have gets a Stateless
   * Reset, smaller than the packet that caused it (§10.3.3) so two endpoints cannot loop:
   * nothing answers a datagram no longer than the smallest reset (it may be one), and a reset
   * answering one of 43 bytes or fewer is one byte shorter. Resets are bounded per interval.
   */
  private maybeStatelessReset(
    datagram: Uint8Array,
    dcid: Uint8Array,
    remote: RemoteAddress,
    now: number,
  ): void {
    if (datagram.length <= MIN_STATELESS_RESET_LENGTH) {
      this.drop(now, 'quic.endpoint.unknown-cid');
      return;
    }
    const b = this.resetBudget;
    if (now >= b.windowStart + b.interval) {
      b.windowStart = now;
      b.sent = 0;
    }
    if (b.sent >= b.limit) {
      this.drop(now, 'quic.endpoint.stateless-reset-limited');
      return;
    }
    b.sent++;
    const length = Math.max(MIN_STATELESS_RESET_LENGTH, Math.min(datagram.length - 1, 43));
    const reset = encodeStatelessReset(this.resetToken(dcid), length, this.random);
    this.counters.inc('quic.endpoint.stateless-reset');
    this.queue(reset, remote, now, `Stateless Reset for dcid=${toHex(dcid)}`, 'RFC 9000 §10.3');
  }

  private queue(
    datagram: Uint8Array,
    remote: RemoteAddress,
    now: number,
    summary: string,
    rfc: string,
  ): void {
    if (this.statelessQueue.length >= MAX_STATELESS_QUEUE) {
      this.drop(now, 'quic.endpoint.stateless-queue-full');
      return;
    }
    this.statelessQueue.push({ datagram, remote: { ...remote } });
    if (this.trace.enabled)
      this.trace.emit({ t: now, host: this.host, layer: 'quic', dir: 'out', summary, rfc });
  }

  private drop(now: number, reason: string): void {
    this.counters.inc(reason);
    if (this.trace.enabled)
      this.trace.emit({ t: now, host: this.host, layer: 'quic', dir: 'drop', summary: reason, reason });
  }

  /** Connection IDs issued or retired by the connection; a drained connection is forgotten. */
  private afterConnection(entry: Entry): void {
    for (let e = entry.conn.pollEndpointEvent(); e; e = entry.conn.pollEndpointEvent()) {
      if (e.type === 'cid-issued') this.route(entry, e.cid);
      else {
        const k = toHex(e.cid);
        entry.keys.delete(k);
        if (this.byCid.get(k) === entry) this.byCid.delete(k);
      }
    }
    if (entry.conn.isDrained) this.forget(entry);
  }

  private forget(entry: Entry): void {
    for (const k of entry.keys) if (this.byCid.get(k) === entry) this.byCid.delete(k);
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    // Its last events (the 'closed' of an idle timeout, say) may not be read yet: a driver
    // takes them from here. Bounded, for a user who never asks.
    this.forgotten.push(entry.conn);
    if (this.forgotten.length > MAX_FORGOTTEN) this.forgotten.shift();
  }

  private forgotten: QuicConnection[] = [];

  /**
   * Connections forgotten (drained) since the last call, so their final events can still be
   * polled: a connection that times out is drained and forgotten in the same handleTimeout.
   */
  takeForgotten(): QuicConnection[] {
    const f = this.forgotten;
    this.forgotten = [];
    return f;
  }

  // ---- sending and timers ----

  pollTransmit(now: number): Transmit | undefined {
    const s = this.statelessQueue.shift();
    if (s) return s;
    // Round robin over connections so one busy connection cannot starve the others.
    const n = this.entries.length;
    for (let i = 0; i < n; i++) {
      const entry = this.entries[(this.next + i) % n];
      if (!entry) continue;
      const d = entry.conn.pollTransmit(now);
      this.afterConnection(entry);
      if (d) {
        this.next = (this.next + i + 1) % Math.max(1, this.entries.length);
        // A PATH_RESPONSE to a probe of another path goes back there (RFC 9000 §8.2.2).
        const remote = entry.conn.transmitRemote ?? entry.conn.remote ?? entry.remote;
        const ecn = entry.conn.transmitEcn;
        const local = entry.conn.transmitLocal;
        const t: Transmit = { datagram: d, remote };
        if (ecn !== 0) t.ecn = ecn;
        if (local) t.local = local;
        return t;
      }
    }
    return undefined;
  }

  pollTimeout(): number | undefined {
    let t: number | undefined;
    for (const e of this.entries) {
      const x = e.conn.pollTimeout();
      if (x !== undefined && (t === undefined || x < t)) t = x;
    }
    return t;
  }

  handleTimeout(now: number): void {
    for (const e of [...this.entries]) {
      const t = e.conn.pollTimeout();
      if (t !== undefined && t <= now) e.conn.handleTimeout(now);
      this.afterConnection(e);
    }
  }
}
