/**
 * A man in the middle for negative tests, and the drivers that put it between our client and
 * our server: once as sans-I/O machines (pump), once as TlsSockets over a hand-made Duplex pair.
 *
 * The MITM reads both machines' NSS key log lines, so it can open every protected record,
 * hand its inner plaintext to an `edit` hook, and seal what the hook returns with the
 * receiver's keys and sequence numbers. Tests use it to put a wrong message, a wrong byte or
 * a wrong size exactly where the RFC rule under test applies, with everything else intact.
 */
import { Duplex, duplexPair } from 'node:stream';
import { fromHex } from '@stepwire/wire';
import type { CertificateSigner, CertificateVerifier } from '../../src/auth.ts';
import { TlsClient, type TlsClientOptions } from '../../src/client.ts';
import { ContentType, HandshakeType } from '../../src/codec/common.ts';
import { decodeHandshake, encodeHandshake, type HandshakeMessage } from '../../src/codec/handshake.ts';
import { RECORD_HEADER_LENGTH } from '../../src/codec/record.ts';
import type { TlsEvent } from '../../src/connection.ts';
import { certificateSigner, certificateVerifier } from '../../src/credentials.ts';
import { AEAD_TAG_LENGTH, type Aead, type CryptoProvider } from '../../src/crypto/provider.ts';
import {
  type CipherSuiteParams,
  cipherSuite,
  nextTrafficSecret,
  trafficKeys,
} from '../../src/keyschedule.ts';
import { type Credentials, createCertificateAuthority, createLeafCertificate } from '../../src/pki/index.ts';
import { TlsServer, type TlsServerOptions } from '../../src/server.ts';
import { TlsError, TlsSocket } from '../../src/socket.ts';
import { pump } from './pump.ts';

export type Direction = 'c2s' | 's2c';
export type Epoch = 'plaintext' | 'handshake' | 'application';

/** What the edit hook sees: one record as its sender meant it. */
export interface SeenRecord {
  dir: Direction;
  epoch: Epoch;
  /** 0-based count of records in this direction (all epochs). */
  index: number;
  /** The real content type (the inner one for protected records). */
  type: number;
  content: Uint8Array;
  /** Whole handshake messages in `content` when it is a handshake record. */
  messages: Uint8Array[];
  /** The record as it came off the wire (header included). */
  record: Uint8Array;
}

/** What goes on to the receiver instead. */
export type OutRecord =
  /** Sealed in the record's epoch (or sent in the clear when `clear`, or in the plaintext epoch). */
  | { type: number; content: Uint8Array; padding?: number; clear?: boolean }
  /** A protected record whose whole TLSInnerPlaintext is given (for size and padding tests). */
  | { inner: Uint8Array }
  /** Bytes put on the wire as they are. */
  | { raw: Uint8Array };

/** Return undefined to pass the record on unchanged. */
export type Edit = (r: SeenRecord) => OutRecord[] | undefined;

/** One direction of record protection, written here from the RFC so the MITM does not reuse the code under test. */
class Protector {
  private readonly aead: Aead;
  private readonly iv: Uint8Array;
  private seq = 0n;

  constructor(crypto: CryptoProvider, suite: CipherSuiteParams, secret: Uint8Array) {
    const { key, iv } = trafficKeys(crypto, suite, secret);
    this.aead = crypto.aead(suite.aead, key);
    this.iv = iv;
  }

  /** RFC 8446 §5.3: the sequence number, left-padded, XOR the static IV. */
  private nonce(): Uint8Array {
    const n = this.iv.slice();
    let s = this.seq++;
    for (let i = n.length - 1; i >= n.length - 8; i--) {
      n[i] = n[i]! ^ Number(s & 0xffn);
      s >>= 8n;
    }
    return n;
  }

  open(record: Uint8Array): Uint8Array {
    const inner = this.aead.open(
      this.nonce(),
      record.subarray(0, RECORD_HEADER_LENGTH),
      record.subarray(RECORD_HEADER_LENGTH),
    );
    if (!inner) throw new Error('mitm: a record did not open with the logged secret');
    return inner;
  }

  /** RFC 8446 §5.2: opaque_type 23, legacy version 0x0303, the header as additional data. */
  seal(inner: Uint8Array): Uint8Array {
    const length = inner.length + AEAD_TAG_LENGTH;
    const header = Uint8Array.of(ContentType.application_data, 3, 3, length >> 8, length & 0xff);
    const body = this.aead.seal(this.nonce(), header, inner);
    const out = new Uint8Array(RECORD_HEADER_LENGTH + body.length);
    out.set(header, 0);
    out.set(body, RECORD_HEADER_LENGTH);
    return out;
  }
}

/** A TLSPlaintext record with any length (the codec refuses to encode oversized ones; tests need them). */
export function plaintextRecord(type: number, content: Uint8Array, version = 0x0303): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_LENGTH + content.length);
  out.set([type, version >> 8, version & 0xff, content.length >> 8, content.length & 0xff], 0);
  out.set(content, RECORD_HEADER_LENGTH);
  return out;
}

/** Whole handshake messages in a handshake record's content (our machines never split them). */
export function splitMessages(content: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (content.length - at >= 4) {
    const len = (content[at + 1]! << 16) | (content[at + 2]! << 8) | content[at + 3]!;
    if (content.length - at < 4 + len) break;
    out.push(content.slice(at, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

export function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface DirState {
  buf: Uint8Array;
  epoch: Epoch;
  index: number;
  open?: Protector;
  seal?: Protector;
  /** Traffic secrets for the reader (sender's log) and the writer (receiver's log) of this epoch. */
  secrets?: { open: Uint8Array; seal: Uint8Array };
}

const LABELS = {
  c2s: {
    handshake: 'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
    application: 'CLIENT_TRAFFIC_SECRET_0',
  },
  s2c: {
    handshake: 'SERVER_HANDSHAKE_TRAFFIC_SECRET',
    application: 'SERVER_TRAFFIC_SECRET_0',
  },
} as const;

export class Mitm {
  private readonly logs = { client: new Map<string, Uint8Array>(), server: new Map<string, Uint8Array>() };
  private suite?: CipherSuiteParams;
  private readonly dirs: Record<Direction, DirState> = {
    c2s: { buf: new Uint8Array(0), epoch: 'plaintext', index: 0 },
    s2c: { buf: new Uint8Array(0), epoch: 'plaintext', index: 0 },
  };
  /** Every record as its sender meant it, for assertions. */
  readonly seen: SeenRecord[] = [];

  constructor(
    private readonly crypto: CryptoProvider,
    private readonly edit: Edit = () => undefined,
  ) {}

  readonly clientKeyLog = (line: string): void => this.log('client', line);
  readonly serverKeyLog = (line: string): void => this.log('server', line);

  private log(side: 'client' | 'server', line: string): void {
    const [label, , secret] = line.split(' ');
    this.logs[side].set(label!, fromHex(secret!));
  }

  /** Bytes one side wrote; returns what the other side gets. */
  forward(dir: Direction, bytes: Uint8Array): Uint8Array {
    const st = this.dirs[dir];
    st.buf = concatAll([st.buf, bytes]);
    const out: Uint8Array[] = [];
    while (st.buf.length >= RECORD_HEADER_LENGTH) {
      const total = RECORD_HEADER_LENGTH + ((st.buf[3]! << 8) | st.buf[4]!);
      if (st.buf.length < total) break;
      const record = st.buf.slice(0, total);
      st.buf = st.buf.slice(total);
      out.push(...this.onRecord(dir, record));
    }
    return concatAll(out);
  }

  private protector(dir: Direction, which: 'open' | 'seal'): Protector {
    const st = this.dirs[dir];
    if (!st.open || !st.seal) {
      const label = LABELS[dir][st.epoch as 'handshake' | 'application'];
      const sender = dir === 'c2s' ? this.logs.client : this.logs.server;
      const receiver = dir === 'c2s' ? this.logs.server : this.logs.client;
      const open = st.secrets?.open ?? sender.get(label);
      if (!open || !this.suite) throw new Error(`mitm: no ${label} logged`);
      // The receiver may not have logged it yet (its ServerHello is still in flight); the secrets agree anyway.
      const seal = st.secrets?.seal ?? receiver.get(label) ?? open;
      st.secrets = { open, seal };
      st.open = new Protector(this.crypto, this.suite, open);
      st.seal = new Protector(this.crypto, this.suite, seal);
    }
    return st[which]!;
  }

  private onRecord(dir: Direction, record: Uint8Array): Uint8Array[] {
    const st = this.dirs[dir];
    const outerType = record[0]!;
    // Compatibility change_cipher_spec, and alerts sent before keys, travel in the clear in any epoch.
    const clear = st.epoch === 'plaintext' || outerType !== ContentType.application_data;
    let type = outerType;
    let content = record.subarray(RECORD_HEADER_LENGTH);
    if (!clear) {
      const inner = this.protector(dir, 'open').open(record);
      let i = inner.length - 1;
      while (i >= 0 && inner[i] === 0) i--;
      type = inner[i]!;
      content = inner.subarray(0, i);
    }
    const messages = type === ContentType.handshake ? splitMessages(content) : [];
    const seen: SeenRecord = {
      dir,
      epoch: clear ? 'plaintext' : st.epoch,
      index: st.index++,
      type,
      content,
      messages,
      record,
    };
    this.seen.push(seen);
    const edited = this.edit(seen);
    const out: Uint8Array[] = [];
    if (!edited)
      out.push(clear ? record : this.protector(dir, 'seal').seal(concatAll([content, Uint8Array.of(type)])));
    else {
      for (const r of edited) {
        if ('raw' in r) out.push(r.raw);
        else if ('inner' in r) out.push(this.protector(dir, 'seal').seal(r.inner));
        else if (r.clear || seen.epoch === 'plaintext') out.push(plaintextRecord(r.type, r.content));
        else
          out.push(
            this.protector(dir, 'seal').seal(
              concatAll([r.content, Uint8Array.of(r.type), new Uint8Array(r.padding ?? 0)]),
            ),
          );
      }
    }
    this.advance(dir, seen);
    return out;
  }

  /** Follow the sender's key changes (RFC 8446 §7.1-§7.2), from the messages it actually sent. */
  private advance(dir: Direction, r: SeenRecord): void {
    for (const raw of r.messages) {
      const type = raw[0];
      if (dir === 's2c' && type === HandshakeType.server_hello && r.epoch === 'plaintext') {
        const sh = decodeHandshake(raw);
        if (sh.msgType !== 'server_hello') continue;
        this.suite = cipherSuite(sh.cipherSuite);
        this.enter('s2c', 'handshake');
        this.enter('c2s', 'handshake');
      } else if (type === HandshakeType.finished && r.epoch === 'handshake') {
        this.enter(dir, 'application');
      } else if (type === HandshakeType.key_update && r.epoch === 'application') {
        const st = this.dirs[dir];
        const s = st.secrets!;
        const h = this.suite!.hash;
        st.secrets = {
          open: nextTrafficSecret(this.crypto, h, s.open),
          seal: nextTrafficSecret(this.crypto, h, s.seal),
        };
        st.open = st.seal = undefined;
      }
    }
  }

  private enter(dir: Direction, epoch: Epoch): void {
    const st = this.dirs[dir];
    st.epoch = epoch;
    st.open = st.seal = st.secrets = undefined;
  }
}

// ---- Editing helpers ----

/** Handshake records with `msgs` in place of the original messages. */
export function handshake(...msgs: (HandshakeMessage | Uint8Array)[]): OutRecord {
  return {
    type: ContentType.handshake,
    content: concatAll(msgs.map((m) => (m instanceof Uint8Array ? m : encodeHandshake(m)))),
  };
}

/** The record's messages before the first one of `type`, then `msg` instead of the rest. */
export function replaceFrom(r: SeenRecord, type: number, msg: HandshakeMessage | Uint8Array): OutRecord[] {
  const at = r.messages.findIndex((m) => m[0] === type);
  if (at < 0) throw new Error(`mitm: no handshake message of type ${type} in this record`);
  return [handshake(...r.messages.slice(0, at), msg)];
}

/** The record with one byte of the first message of `type` changed: `offset` from the message start (negative: from its end). */
export function flipInMessage(r: SeenRecord, type: number, offset: number, xor = 0x01): OutRecord[] {
  const msgs = r.messages.map((m) => m.slice());
  const m = msgs.find((x) => x[0] === type);
  if (!m) throw new Error(`mitm: no handshake message of type ${type} in this record`);
  const i = offset < 0 ? m.length + offset : offset;
  m[i] = m[i]! ^ xor;
  return [handshake(...msgs)];
}

export const has = (r: SeenRecord, type: number): boolean => r.messages.some((m) => m[0] === type);

/** An edit (made fresh for each run) of the first record matching `when`, once. */
export function once(when: (r: SeenRecord) => boolean, edit: (r: SeenRecord) => OutRecord[]): () => Edit {
  return () => {
    let done = false;
    return (r: SeenRecord) => {
      if (done || !when(r)) return undefined;
      done = true;
      return edit(r);
    };
  };
}

/** Records going `dir` in `epoch`, holding a handshake message of `type` when given. */
export const recordAt = (dir: Direction, epoch: SeenRecord['epoch'], type?: number) => (r: SeenRecord) =>
  r.dir === dir && r.epoch === epoch && (type === undefined || has(r, type));
export const c2s = (epoch: SeenRecord['epoch'], type?: number) => recordAt('c2s', epoch, type);
export const s2c = (epoch: SeenRecord['epoch'], type?: number) => recordAt('s2c', epoch, type);
/** application_data records going `dir` once the application keys are in use. */
export const appDataFrom = (dir: Direction) => (r: SeenRecord) =>
  r.dir === dir && r.epoch === 'application' && r.type === ContentType.application_data;

// ---- A hand-made Duplex pair ----

export interface WireOptions {
  /** Deliver in pieces of this many bytes (1: every byte separately). */
  chunk?: number;
  /** Change bytes in flight (the MITM). */
  tap?: (dir: Direction, bytes: Uint8Array) => Uint8Array;
  /** End the transport after this many bytes have gone in a direction (the rest is lost). */
  cut?: { dir: Direction; after: number };
}

class WireEnd extends Duplex {
  peer!: WireEnd;
  private sent = 0;
  private cutDone = false;
  private peerEnded = false;

  private toPeer(bytes: Uint8Array | null): void {
    if (this.peerEnded || this.peer.destroyed) return;
    if (bytes === null) this.peerEnded = true;
    this.peer.push(bytes);
  }

  constructor(
    private readonly dir: Direction,
    private readonly options: WireOptions,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    let bytes: Uint8Array = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength).slice();
    if (this.options.tap) bytes = this.options.tap(this.dir, bytes);
    const cut = this.options.cut;
    if (cut && cut.dir === this.dir) {
      if (this.cutDone) {
        cb();
        return;
      }
      if (this.sent + bytes.length >= cut.after) {
        bytes = bytes.subarray(0, cut.after - this.sent);
        this.cutDone = true;
      }
    }
    this.sent += bytes.length;
    const n = Math.max(1, this.options.chunk ?? bytes.length);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += n) pieces.push(bytes.slice(i, i + n));
    const ending = this.cutDone;
    // Asynchronous delivery, like a real transport: the writer's stack unwinds first.
    setImmediate(() => {
      for (const p of pieces) this.toPeer(p);
      if (ending) this.toPeer(null);
      cb();
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    setImmediate(() => {
      this.toPeer(null);
      cb();
    });
  }

  override _read(): void {}

  /** Like closing a TCP socket: what was written still arrives, then the peer reads EOF. */
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    setImmediate(() => {
      this.toPeer(null);
    });
    cb(err);
  }
}

/**
 * The MITM between two node:stream duplexPair()s: client <-> [a, m1] relay [m2, b] <-> server.
 * An end travels on; a destroy does not (duplexPair has no such signal), as with a half-dead peer.
 */
export function nodePairs(tap: (dir: Direction, bytes: Uint8Array) => Uint8Array): [Duplex, Duplex] {
  const [a, m1] = duplexPair();
  const [m2, b] = duplexPair();
  const relay = (from: Duplex, to: Duplex, dir: Direction) => {
    from.on('data', (d: Buffer) => {
      const out = tap(dir, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
      if (out.length > 0 && !to.destroyed && !to.writableEnded) to.write(out);
    });
    from.on('end', () => {
      if (!to.destroyed && !to.writableEnded) to.end();
    });
    from.on('error', () => {});
  };
  relay(m1, m2, 'c2s');
  relay(m2, m1, 's2c');
  return [a, b];
}

/** Two connected Duplex ends: [client side, server side]. */
export function wirePair(options: WireOptions = {}): [Duplex, Duplex] {
  const c = new WireEnd('c2s', options);
  const s = new WireEnd('s2c', options);
  c.peer = s;
  s.peer = c;
  return [c, s];
}

// ---- Scenarios: client and server options, the edit, and the drivers ----

export interface Scenario {
  crypto: CryptoProvider;
  now: number;
  client: Omit<TlsClientOptions, 'keyLog' | 'crypto'> & { verifier: CertificateVerifier };
  server: Omit<TlsServerOptions, 'keyLog' | 'crypto'> & { signer: CertificateSigner };
  edit?: Edit;
  /** Application data the client sends once connected (machines: after the handshake; sockets: written at once). */
  clientWrites?: Uint8Array;
}

export interface MachineRun {
  client: TlsClient;
  server: TlsServer;
  mitm: Mitm;
  events: { client: TlsEvent[]; server: TlsEvent[] };
}

/** Our client and server as sans-I/O machines with the MITM in between. Any exception from receive() escapes here. */
export function runMachines(sc: Scenario, chunk?: number): MachineRun {
  const mitm = new Mitm(sc.crypto, sc.edit);
  const client = new TlsClient({ ...sc.client, crypto: sc.crypto, keyLog: mitm.clientKeyLog });
  const server = new TlsServer({ ...sc.server, crypto: sc.crypto, keyLog: mitm.serverKeyLog });
  const tap = (from: 'a' | 'b', bytes: Uint8Array) => mitm.forward(from === 'a' ? 'c2s' : 's2c', bytes);
  const ev = pump(client, server, client.start(sc.now), { now: sc.now, tap, chunk });
  if (sc.clientWrites && client.isConnected && server.isConnected) {
    const more = pump(client, server, client.send(sc.clientWrites, sc.now), { now: sc.now, tap, chunk });
    ev.a.push(...more.a);
    ev.b.push(...more.b);
  }
  return { client, server, mitm, events: { client: ev.a, server: ev.b } };
}

export interface SocketOutcome {
  secure: boolean;
  error?: Error;
  data: Buffer;
  ended: boolean;
  closed: boolean;
}

/** Record what a socket reports; `closed` settles on its 'close'. */
export function watch(s: Duplex): { o: SocketOutcome; closed: Promise<void> } {
  const o: SocketOutcome = { secure: false, data: Buffer.alloc(0), ended: false, closed: false };
  s.on('secure', () => {
    o.secure = true;
  });
  s.on('error', (e: Error) => {
    o.error ??= e;
  });
  s.on('data', (d: Buffer) => {
    o.data = Buffer.concat([o.data, d]);
  });
  s.on('end', () => {
    o.ended = true;
  });
  const closed = new Promise<void>((resolve) =>
    s.on('close', () => {
      o.closed = true;
      resolve();
    }),
  );
  return { o, closed };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SocketRun {
  client: SocketOutcome;
  server: SocketOutcome;
  mitm: Mitm;
  sockets: { client: TlsSocket; server: TlsSocket };
}

/**
 * The same scenario over TlsSockets on a hand-made Duplex pair (asynchronous delivery, optional
 * chunking, a cut) or on node:stream duplexPair()s, with the MITM in between.
 */
export async function runSockets(
  sc: Scenario,
  wire: Omit<WireOptions, 'tap'> & { transport?: 'wire' | 'node' } = {},
  ms = 1000,
): Promise<SocketRun> {
  const mitm = new Mitm(sc.crypto, sc.edit);
  const tap = (dir: Direction, bytes: Uint8Array) => mitm.forward(dir, bytes);
  const [a, b] = wire.transport === 'node' ? nodePairs(tap) : wirePair({ ...wire, tap });
  const now = () => sc.now;
  const client = new TlsSocket(
    a,
    new TlsClient({ ...sc.client, crypto: sc.crypto, keyLog: mitm.clientKeyLog }),
    { now },
  );
  const server = new TlsSocket(
    b,
    new TlsServer({ ...sc.server, crypto: sc.crypto, keyLog: mitm.serverKeyLog }),
    { now },
  );
  const c = watch(client);
  const s = watch(server);
  client.startHandshake();
  if (sc.clientWrites) client.write(sc.clientWrites);
  // Until both sides close; at most `ms`; and once one side has closed, the other gets `grace`
  // to follow (an alert in flight lands within a few event-loop turns). A hang shows as closed: false.
  const grace = 300;
  await Promise.race([
    Promise.all([c.closed, s.closed]),
    sleep(ms),
    Promise.race([c.closed, s.closed]).then(() => sleep(grace)),
  ]);
  // Let a last 'error' or 'data' already queued land first.
  await new Promise((r) => setImmediate(r));
  client.destroy();
  server.destroy();
  return { client: c.o, server: s.o, mitm, sockets: { client, server } };
}

/** The first error event of a side. */
export function firstError(events: TlsEvent[]): Extract<TlsEvent, { type: 'error' }> | undefined {
  return events.find((e): e is Extract<TlsEvent, { type: 'error' }> => e.type === 'error');
}

export function completed(events: TlsEvent[]): boolean {
  return events.some((e) => e.type === 'handshake-complete');
}

/** A socket error as { alert, sentByUs }, or a description of what came instead. */
export function tlsErrorOf(o: SocketOutcome): { alert: string; sentByUs: boolean } | string {
  if (o.error instanceof TlsError) return { alert: o.error.alert, sentByUs: o.error.sentByUs };
  if (o.error) return `non-TLS error: ${o.error.message}`;
  return o.closed ? 'closed without an error' : 'no error and not closed (hang)';
}

// ---- Certificates from our pki, through the package's own glue (credentials.ts) ----

const DAY = 86_400_000;

/** A CA, leaves for stepwire.test (good, expired, from a stranger CA) and a client leaf, all at `now`. */
export function testPki(now: number) {
  const at = new Date(now);
  const ca = createCertificateAuthority({ now: at, commonName: 'negative-tests CA' });
  const strangerCa = createCertificateAuthority({ now: at, commonName: 'stranger CA' });
  const names = { dnsNames: ['stepwire.test'] };
  const leaf = createLeafCertificate(ca, { now: at, ...names });
  // Issued a month ago for one day: expired at `now` (RFC 5280 §4.1.2.5).
  const expired = createLeafCertificate(ca, { now: new Date(now - 30 * DAY), validDays: 1, ...names });
  const stranger = createLeafCertificate(strangerCa, { now: at, ...names });
  const client = createLeafCertificate(ca, { now: at, dnsNames: ['client.stepwire.test'] });
  const expiredClient = createLeafCertificate(ca, {
    now: new Date(now - 30 * DAY),
    validDays: 1,
    dnsNames: ['client.stepwire.test'],
  });
  const strangerClient = createLeafCertificate(strangerCa, { now: at, dnsNames: ['client.stepwire.test'] });
  return {
    ca,
    leaf,
    expired,
    stranger,
    client,
    expiredClient,
    strangerClient,
    /** What a client trusts: our CA, names checked against serverName. */
    serverVerifier: () => certificateVerifier({ ca: ca.certificate }),
    /** What a server checks client certificates with. */
    clientVerifier: () => certificateVerifier({ ca: ca.certificate, purpose: 'clientAuth' }),
    signer: (c: Credentials) => certificateSigner(c),
  };
}
export type TestPki = ReturnType<typeof testPki>;
