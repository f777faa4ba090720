/**
 * Cloudflare's quiche (through @matrixai/quic's prebuilt binding) as an in-process QUIC peer:
 * an implementation independent of ours, driven sans-I/O like our own connection — datagrams
 * in, datagrams out — so a test pairs the two in memory with no socket at all. It keys its
 * timers on the real clock (Rust's Instant), so tests that need its timeouts wait for real.
 */
import { randomBytes } from 'node:crypto';
import { native } from '@matrixai/quic';
import type { certificateSigner } from '@stepwire/tls';
import { QuicConnection } from '../../src/connection/connection.ts';
import type { QuicConnectionEvent, TransportConfig } from '../../src/connection/types.ts';
import { parseProtectedHeader } from '../../src/packet/header.ts';
import type { QuicTlsClientOptions, QuicTlsServerOptions } from '../../src/tls/handshake.ts';
import { quicClientTls, quicServerTls } from './tls.ts';

const quiche = native.quiche;
type Connection = ReturnType<typeof quiche.Connection.connect>;
type Config = ReturnType<typeof quiche.Config.withBoringSslCtx>;
export interface QuicheError {
  isApp: boolean;
  errorCode: number;
  reason: Uint8Array;
}
export interface HostPort {
  host: string;
  port: number;
}

export interface QuichePeerOptions {
  role: 'client' | 'server';
  /** Our address and the peer's, as quiche records the path. */
  local?: HostPort;
  remote?: HostPort;
  alpn?: string[];
  /** Client: the name to send and verify. */
  serverName?: string;
  /** Client: trust anchors (PEM); without them the client does not verify. */
  caPem?: string;
  /** Server: certificate chain and key (PEM). */
  certPem?: string;
  keyPem?: string;
  /** Resumption: a session from `session()` of an earlier client connection. */
  session?: Uint8Array;
  earlyData?: boolean;
  /** Flow-control and stream limits it advertises; generous by default. */
  maxData?: number;
  maxStreamData?: number;
  maxStreams?: number;
  idleTimeoutMs?: number;
  /** Write its TLS secrets in NSS key log format (for tshark). */
  keylogPath?: string;
  /** Server: the ticket key, shared across server instances for resumption. */
  ticketKey?: Uint8Array;
  /** Accept and send DATAGRAM frames (RFC 9221), with queues of this many each. */
  datagrams?: number;
}

const enc = new TextEncoder();

function config(o: QuichePeerOptions): Config {
  const c =
    o.role === 'server'
      ? quiche.Config.withBoringSslCtx(
          false,
          false,
          null,
          [enc.encode(o.keyPem ?? '')],
          [enc.encode(o.certPem ?? '')],
          null,
        )
      : quiche.Config.withBoringSslCtx(
          o.caPem !== undefined,
          false,
          o.caPem ? enc.encode(o.caPem) : null,
          null,
          null,
          null,
        );
  c.setApplicationProtos(o.alpn ?? ['h3']);
  c.setMaxIdleTimeout(o.idleTimeoutMs ?? 30_000);
  const data = o.maxData ?? 16 << 20;
  const stream = o.maxStreamData ?? 4 << 20;
  c.setInitialMaxData(data);
  c.setInitialMaxStreamDataBidiLocal(stream);
  c.setInitialMaxStreamDataBidiRemote(stream);
  c.setInitialMaxStreamDataUni(stream);
  c.setInitialMaxStreamsBidi(o.maxStreams ?? 100);
  c.setInitialMaxStreamsUni(o.maxStreams ?? 100);
  if (o.earlyData) c.enableEarlyData();
  if (o.ticketKey) c.setTicketKey(o.ticketKey);
  if (o.keylogPath) c.logKeys();
  if (o.datagrams) c.enableDgram(true, o.datagrams, o.datagrams);
  return c;
}

/** One quiche connection, client or server (a server's is made by its first Initial). */
export class QuichePeer {
  readonly local: HostPort;
  readonly remote: HostPort;
  private conn?: Connection;
  private readonly cfg: Config;
  private readonly out = new Uint8Array(65_535);

  constructor(private readonly o: QuichePeerOptions) {
    this.local = o.local ?? { host: '127.0.0.1', port: o.role === 'client' ? 50_000 : 4433 };
    this.remote = o.remote ?? { host: '127.0.0.1', port: o.role === 'client' ? 4433 : 50_000 };
    this.cfg = config(o);
    if (o.role === 'client') {
      this.conn = quiche.Connection.connect(
        o.serverName ?? 'stepwire.test',
        randomBytes(16),
        this.local,
        this.remote,
        this.cfg,
      );
      if (o.session) this.conn.setSession(o.session);
      if (o.keylogPath) this.conn.setKeylog(o.keylogPath);
    }
  }

  /** The connection, once there is one. */
  get connection(): Connection {
    if (!this.conn) throw new Error('quiche server: no Initial received yet');
    return this.conn;
  }
  get started(): boolean {
    return this.conn !== undefined;
  }

  /**
   * A datagram from the peer (from `from`, by default the peer's first address). A server
   * accepts the first one as a new connection (no Retry).
   */
  receive(datagram: Uint8Array, from: HostPort = this.remote, to: HostPort = this.local): void {
    if (!this.conn) {
      const h = quiche.Header.fromSlice(datagram, 16);
      if (h.ty !== quiche.Type.Initial) return;
      this.conn = quiche.Connection.accept(randomBytes(16), null, this.local, this.remote, this.cfg);
      if (this.o.keylogPath) this.conn.setKeylog(this.o.keylogPath);
    }
    // quiche copies what it keeps; it may decrypt in place, so it gets its own copy.
    this.conn.recv(datagram.slice(), { to, from });
  }

  /** Every datagram quiche wants to send now. */
  drain(): Uint8Array[] {
    return this.drainPaths().map((d) => d.data);
  }

  /** Every datagram quiche wants to send now, with the addresses it sends it from and to. */
  drainPaths(): { data: Uint8Array; from: HostPort; to: HostPort }[] {
    const list: { data: Uint8Array; from: HostPort; to: HostPort }[] = [];
    if (!this.conn) return list;
    for (;;) {
      const r = this.conn.send(this.out);
      if (r === null) break;
      list.push({ data: this.out.slice(0, r[0]), from: r[1].from, to: r[1].to });
    }
    return list;
  }

  /**
   * Issue `n` more connection IDs of quiche's to the peer (NEW_CONNECTION_ID): quiche leaves
   * that to its application, and a peer cannot migrate without a spare one (RFC 9000 §9.5).
   */
  issueConnectionIds(n: number): void {
    for (let i = 0; i < n; i++)
      this.connection.newSourceCid(randomBytes(16), BigInt(`0x${randomBytes(16).toString('hex')}`), false);
  }

  /** Client: move to a new local address (quiche probes the new path, then uses it; RFC 9000 §9.2). */
  migrateSource(local: HostPort): void {
    this.connection.migrateSource(local);
  }

  /** Queue a DATAGRAM frame (RFC 9221); false when quiche refuses it (too large, queue full). */
  sendDatagram(data: Uint8Array): boolean {
    try {
      this.connection.dgramSend(data);
      return true;
    } catch {
      return false;
    }
  }

  /** The DATAGRAM payloads received so far and not read. */
  readDatagrams(): Uint8Array[] {
    const list: Uint8Array[] = [];
    for (let d = this.conn?.dgramRecvVec() ?? null; d; d = this.conn?.dgramRecvVec() ?? null) list.push(d);
    return list;
  }

  /** Milliseconds until quiche's next timer, or null. */
  timeout(): number | null {
    return this.conn ? this.conn.timeout() : null;
  }
  onTimeout(): void {
    this.conn?.onTimeout();
  }

  get established(): boolean {
    return this.conn?.isEstablished() ?? false;
  }
  get closed(): boolean {
    return this.conn?.isClosed() ?? false;
  }
  get alpn(): string {
    return this.conn ? Buffer.from(this.conn.applicationProto()).toString('latin1') : '';
  }

  /** Queue bytes on a stream; returns how many quiche took (flow control may take fewer). */
  send(streamId: number, data: Uint8Array, fin = false): number {
    return this.connection.streamSend(streamId, data, fin) ?? 0;
  }

  /** Read what a stream has now; `fin` once its end arrived. */
  read(streamId: number): { data: Uint8Array; fin: boolean } {
    const parts: Uint8Array[] = [];
    let fin = false;
    const buf = new Uint8Array(65_535);
    for (;;) {
      const r = this.connection.streamRecv(streamId, buf);
      if (r === null) break;
      parts.push(buf.slice(0, r[0]));
      if (r[1]) {
        fin = true;
        break;
      }
    }
    return { data: Buffer.concat(parts), fin };
  }

  /** Stream ids with data (or an end) to read. */
  readable(): number[] {
    if (!this.conn) return [];
    return [...this.conn.readable()].map(Number);
  }

  close(app: boolean, code: number, reason = ''): void {
    this.conn?.close(app, code, enc.encode(reason));
  }

  /** The error the peer closed with, if any. */
  peerError(): QuicheError | null {
    return this.conn?.peerError() ?? null;
  }
  localError(): QuicheError | null {
    return this.conn?.localError() ?? null;
  }

  /** Client: the session to resume with later (after a NewSessionTicket arrived). */
  session(): Uint8Array | null {
    return this.conn?.session() ?? null;
  }
  get resumed(): boolean {
    return this.conn?.isResumed() ?? false;
  }
  get inEarlyData(): boolean {
    return this.conn?.isInEarlyData() ?? false;
  }
  stats(): unknown {
    return this.conn?.stats();
  }
}

export interface FerryOptions {
  /** Real seconds before giving up (default 20): a busy machine slows a test without failing it. */
  seconds?: number;
  /** Datagrams (counted both ways) that `drop` picks are lost. */
  drop?: (n: number) => boolean;
  /** Runs at the start of every round (the test's application logic). */
  onRound?: () => void;
  /**
   * Carry addresses: our datagrams reach quiche from `ourAddress()` (default: quiche's remote)
   * to where our connection sends, and quiche's reach ours from where quiche's send says — so
   * a peer that moves is seen moving. Without it neither side is told any address.
   */
  paths?: { ourAddress: () => HostPort };
}

/**
 * Ferry datagrams between our sans-I/O connection and quiche until `done`. Both keep their
 * timers on the real clock: when nothing moved in a round, wait (a few ms at most) for the
 * nearer of the two deadlines so loss detection and PTO fire as they would on a wire.
 */
export async function ferry(
  ours: QuicConnection,
  quiche: QuichePeer,
  ev: QuicConnectionEvent[],
  done: () => boolean,
  o: FerryOptions = {},
): Promise<void> {
  const now = () => Date.now();
  let n = 0;
  const deadline = now() + (o.seconds ?? 20) * 1000;
  while (!done() && now() < deadline) {
    o.onRound?.();
    let moved = 0;
    for (let d = ours.pollTransmit(now()); d; d = ours.pollTransmit(now())) {
      moved++;
      if (o.drop?.(n++)) continue;
      if (!o.paths) quiche.receive(d);
      else {
        const to = ours.remote ? { host: ours.remote.address, port: ours.remote.port } : quiche.local;
        quiche.receive(d, o.paths.ourAddress(), to);
      }
    }
    for (const d of quiche.drainPaths()) {
      moved++;
      if (o.drop?.(n++)) continue;
      if (!o.paths) ours.handle(d.data, now());
      else ours.handle(d.data, now(), { address: d.from.host, port: d.from.port });
    }
    for (let e = ours.pollEvent(); e; e = ours.pollEvent()) ev.push(e);
    const t = ours.pollTimeout();
    if (t !== undefined && t <= now()) ours.handleTimeout(now());
    const qt = quiche.timeout();
    if (qt === 0) quiche.onTimeout();
    if (moved === 0 && !done()) {
      const waits = [t === undefined ? 5 : t - now(), qt ?? 5];
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(5, ...waits))));
    }
  }
}

// ---- Our side, as the quiche tests pair it ----

/** Our sans-I/O client connection on the real clock: our TLS verifying `caPem` for stepwire.test. */
export function ourQuicClient(
  caPem: string,
  alpn: string,
  o: {
    transport?: Partial<TransportConfig>;
    tls?: Partial<Omit<QuicTlsClientOptions, 'transportParameters'>>;
  } = {},
): QuicConnection {
  return new QuicConnection({
    role: 'client',
    now: Date.now(),
    ...(o.transport ? { transport: o.transport } : {}),
    tls: quicClientTls(caPem, alpn, o.tls),
  });
}

/** Our server connection for the client's first Initial, as the endpoint would make it. */
export function ourQuicServer(
  first: Uint8Array,
  leaf: Parameters<typeof certificateSigner>[0],
  alpn: string,
  tls: Partial<Omit<QuicTlsServerOptions, 'transportParameters'>> = {},
): QuicConnection {
  const h = parseProtectedHeader(first, 0);
  return new QuicConnection({
    role: 'server',
    now: Date.now(),
    server: { originalDcid: h.dcid, initialDcid: h.dcid, clientScid: h.scid },
    tls: quicServerTls(leaf, alpn, tls),
  });
}

/**
 * Our client sends `body` on a fresh stream and quiche echoes what arrives, as its flow
 * control allows; resolves with the echo once whole, and what quiche read (and whether its
 * FIN came). `midway` runs once, after half of the echo has come back.
 */
export async function echoThroughQuiche(
  client: QuicConnection,
  server: QuichePeer,
  ev: QuicConnectionEvent[],
  body: Uint8Array,
  o: { midway?: () => void; ferry?: Omit<FerryOptions, 'onRound'> } = {},
): Promise<{ back: Buffer; atServer: Buffer; serverFin: boolean; midwayDone: boolean }> {
  const id = client.openStream('bidi');
  client.write(id, body, true);
  const atServer: Uint8Array[] = [];
  let serverFin = false;
  let echoed = 0;
  let finSent = false;
  let clientFin = false;
  let midwayDone = false;
  const back: Uint8Array[] = [];
  let backLength = 0;
  await ferry(client, server, ev, () => clientFin, {
    seconds: 20,
    ...o.ferry,
    onRound: () => {
      for (const sid of server.readable()) {
        const r = server.read(sid);
        atServer.push(r.data);
        serverFin ||= r.fin;
      }
      const all = Buffer.concat(atServer);
      if (echoed < all.length || (serverFin && !finSent)) {
        echoed += server.send(id, all.subarray(echoed), serverFin);
        finSent = serverFin && echoed === all.length;
      }
      for (const e of ev.splice(0))
        if (e.type === 'stream-data' && e.id === id) {
          back.push(e.data);
          backLength += e.data.length;
          clientFin ||= e.fin;
        }
      if (!midwayDone && backLength >= body.length / 2) {
        midwayDone = true;
        o.midway?.();
      }
    },
  });
  return { back: Buffer.concat(back), atServer: Buffer.concat(atServer), serverFin, midwayDone };
}
