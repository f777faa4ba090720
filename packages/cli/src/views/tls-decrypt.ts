import { decodeIpv4, decodeIpv6, IPPROTO_TCP } from '@stepwire/ip';
import { ACK, decodeSegment, SYN } from '@stepwire/tcp';
import {
  CIPHER_SUITES,
  type CipherSuiteParams,
  decodeHandshake,
  nextTrafficSecret,
  nobleCrypto,
  RecordProtection,
} from '@stepwire/tls';
import { concatBytes, ParseError } from '@stepwire/wire';

/**
 * TLS 1.3 decryption for `stepwire trace`, the way Wireshark does it with a key log: each
 * TCP connection's two byte streams are put back in sequence order, cut into TLS records
 * (RFC 8446 §5.1), the ClientHello gives the client_random that names the connection's
 * secrets in the key log and the ServerHello its cipher suite; then every protected record
 * is opened with the tls package's RecordProtection under the traffic secret of its
 * direction and epoch — handshake secrets until that side's Finished, application secrets
 * after it (§7.1, §7.3), the next generation after a KeyUpdate (§7.2); 0-RTT data under
 * the early secret until EndOfEarlyData (§2.3, §4.5).
 *
 * Memory is bounded: at most MAX_CONNECTIONS connections are followed, out-of-order data
 * waits in at most MAX_OOO_BYTES per direction, a record cannot announce more than
 * 2^14 + 256 bytes, nor a handshake message more than MAX_HANDSHAKE bytes; past those the
 * stream is given up and the reason is shown. Only the tls package's exported key schedule
 * and RecordProtection are used (nothing had to be re-implemented).
 */

/** One thing a packet carried once decrypted, for the ladder and the HTML page. */
export interface Decrypted {
  layer: 'tls-decrypted' | 'http';
  /** One line: 'TLS (decrypted) EncryptedExtensions, Certificate, ...', 'HTTP/1.1 GET /'. */
  text: string;
  /** The decrypted bytes (the first ones of a large record), for the detail pane. */
  bytes?: Uint8Array;
  /** The handshake messages' names, when the record carried handshake messages. */
  messages?: string[];
}

/** NSS key log lines ('LABEL <client_random hex> <secret hex>') by label and client random. */
export type KeyLog = Map<string, Uint8Array>;

export function parseKeyLog(lines: Iterable<string>, into: KeyLog = new Map()): KeyLog {
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [label, cr, secret] = line.split(/\s+/);
    if (!label || !cr || !secret || !/^[0-9a-fA-F]+$/.test(secret) || secret.length % 2) continue;
    into.set(`${label} ${cr.toLowerCase()}`, Uint8Array.from(Buffer.from(secret, 'hex')));
  }
  return into;
}

const MAX_OOO_BYTES = 1 << 20;
/** TCP connections followed at once: each holds at most a record and a handshake message. */
const MAX_CONNECTIONS = 4096;
const MAX_RECORD = 5 + (1 << 14) + 256;
const MAX_HANDSHAKE = 1 << 17;
const HELLO_RETRY_RANDOM = 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c';

const HANDSHAKE_NAMES: Record<number, string> = {
  1: 'ClientHello',
  2: 'ServerHello',
  4: 'NewSessionTicket',
  5: 'EndOfEarlyData',
  8: 'EncryptedExtensions',
  11: 'Certificate',
  13: 'CertificateRequest',
  15: 'CertificateVerify',
  20: 'Finished',
  24: 'KeyUpdate',
  25: 'CompressedCertificate',
};
const ALERTS: Record<number, string> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  40: 'handshake_failure',
  42: 'bad_certificate',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  50: 'decode_error',
  51: 'decrypt_error',
  70: 'protocol_version',
  80: 'internal_error',
  90: 'user_canceled',
  109: 'missing_extension',
  112: 'unrecognized_name',
  116: 'certificate_required',
  120: 'no_application_protocol',
};

/** One direction of a TCP connection, reassembled in sequence order. */
class Direction {
  next: number | undefined;
  private readonly ooo = new Map<number, Uint8Array>();
  private oooBytes = 0;
  private buf: Uint8Array = new Uint8Array(0);
  /** Set when the stream is given up; the reason is reported once. */
  failed: string | undefined;
  secret: Uint8Array | undefined;
  protection: RecordProtection | undefined;
  /** 'handshake' until this side's Finished, then 'application'. */
  epoch: 'plain' | 'early' | 'handshake' | 'application' = 'plain';
  private hsBuf: Uint8Array = new Uint8Array(0);
  private hsPlainBuf: Uint8Array = new Uint8Array(0);
  isClient = false;
  /** TLS 1.2: this side sent ChangeCipherSpec, so its handshake records are encrypted. */
  afterCcs = false;
  /** Whole records seen on this stream. */
  private records = 0;

  constructor(readonly label: string) {}

  /** Deliver a segment; calls `record(bytes, packet)` for each whole TLS record in order. */
  segment(
    seq: number,
    data: Uint8Array,
    packet: number,
    record: (r: Uint8Array, packet: number) => void,
    fail: (reason: string, packet: number) => void,
  ): void {
    if (this.failed) return;
    if (this.next === undefined) this.next = seq;
    let off = (seq - this.next) | 0;
    if (off < 0) {
      // A retransmission overlapping what was delivered: keep only the new bytes.
      if (-off >= data.length) return;
      data = data.subarray(-off);
      seq = this.next;
      off = 0;
    }
    if (off > 0) {
      if (this.oooBytes + data.length > MAX_OOO_BYTES) {
        this.fail(`more than ${MAX_OOO_BYTES} bytes out of order (a gap in the capture)`, packet, fail);
        return;
      }
      if (!this.ooo.has(seq >>> 0)) {
        this.ooo.set(seq >>> 0, data);
        this.oooBytes += data.length;
      }
      return;
    }
    this.deliver(data, packet, record, fail);
    // Anything waiting that now fits.
    for (let found = true; found && !this.failed; ) {
      found = false;
      for (const [s, w] of this.ooo) {
        const d = (s - (this.next ?? 0)) | 0;
        if (d > 0) continue;
        this.ooo.delete(s);
        this.oooBytes -= w.length;
        found = true;
        // Records completed now belong to the packet that filled the gap, as Wireshark shows them.
        if (-d < w.length) this.deliver(w.subarray(-d), packet, record, fail);
        break;
      }
    }
  }

  private deliver(
    data: Uint8Array,
    packet: number,
    record: (r: Uint8Array, packet: number) => void,
    fail: (reason: string, packet: number) => void,
  ): void {
    this.next = ((this.next ?? 0) + data.length) >>> 0;
    this.buf = this.buf.length === 0 ? data : concatBytes(this.buf, data);
    let at = 0;
    while (this.buf.length - at >= 5 && !this.failed) {
      const type = this.buf[at]!;
      const len = (this.buf[at + 3]! << 8) | this.buf[at + 4]!;
      // RFC 8446 §5.1: content types 20..23 (24 heartbeat is not TLS 1.3), version 0x03xx.
      if (type < 20 || type > 23 || this.buf[at + 1] !== 3) {
        // A stream that never carried a record is simply not TLS: nothing to report.
        if (this.records === 0) {
          this.failed = 'not TLS';
          this.buf = new Uint8Array(0);
          return;
        }
        this.fail(`not a TLS record at stream byte ${at} (type ${type})`, packet, fail);
        return;
      }
      if (5 + len > MAX_RECORD) {
        this.fail(`record of ${len} bytes exceeds 2^14+256 (RFC 8446 §5.2)`, packet, fail);
        return;
      }
      if (this.buf.length - at < 5 + len) break;
      this.records++;
      record(this.buf.subarray(at, at + 5 + len), packet);
      at += 5 + len;
    }
    this.buf = this.buf.slice(at);
  }

  fail(reason: string, packet: number, fail: (reason: string, packet: number) => void): void {
    if (this.failed) return;
    this.failed = reason;
    this.buf = new Uint8Array(0);
    this.ooo.clear();
    fail(reason, packet);
  }

  /** Handshake messages from (decrypted or plain) handshake records, reassembled (RFC 8446 §5.1). */
  handshake(fragment: Uint8Array, plain: boolean): Uint8Array[] {
    const held = plain ? this.hsPlainBuf : this.hsBuf;
    const buf = held.length === 0 ? fragment : concatBytes(held, fragment);
    const out: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
      if (len > MAX_HANDSHAKE) throw new Error(`handshake message of ${len} bytes exceeds ${MAX_HANDSHAKE}`);
      if (buf.length - at < 4 + len) break;
      out.push(buf.subarray(at, at + 4 + len));
      at += 4 + len;
    }
    if (plain) this.hsPlainBuf = buf.slice(at);
    else this.hsBuf = buf.slice(at);
    return out;
  }
}

interface Connection {
  dirs: Map<string, Direction>;
  /** The ServerHello carried no supported_versions: TLS 1.2 or older (RFC 8446 §4.2.1). */
  tls12?: boolean;
  clientRandom: string | undefined;
  suite: CipherSuiteParams | undefined;
}

/**
 * RFC 8446 §4.2.1: a TLS 1.3 ServerHello always carries supported_versions (43); read from
 * the raw message so a TLS 1.2 ServerHello (which our TLS 1.3 codec may refuse) is told apart.
 */
function negotiatesTls13(m: Uint8Array): boolean {
  let at = 4 + 2 + 32;
  if (m.length < at + 1) return false;
  at += 1 + m[at]! + 2 + 1; // session id, cipher suite, compression method
  if (m.length < at + 2) return false;
  const end = Math.min(m.length, at + 2 + ((m[at]! << 8) | m[at + 1]!));
  at += 2;
  while (at + 4 <= end) {
    const type = (m[at]! << 8) | m[at + 1]!;
    if (type === 43) return true;
    at += 4 + ((m[at + 2]! << 8) | m[at + 3]!);
  }
  return false;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** What an application-data plaintext looks like in one line: an HTTP/1.x start line, or its size. */
function describeAppData(b: Uint8Array): Decrypted {
  const head = new TextDecoder('latin1').decode(b.subarray(0, 256));
  const first = head.split('\r\n')[0] ?? '';
  const request = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(first);
  if (request) return { layer: 'http', text: `${request[3]} ${request[1]} ${request[2]}`, bytes: b };
  const status = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(first);
  if (status) return { layer: 'http', text: `${status[1]} ${status[2]} ${status[3] ?? ''}`.trim(), bytes: b };
  if (b.length >= 24 && head.startsWith('PRI * HTTP/2.0'))
    return { layer: 'http', text: 'HTTP/2 connection preface', bytes: b };
  return { layer: 'tls-decrypted', text: `TLS (decrypted) application data, ${b.length} bytes`, bytes: b };
}

/**
 * Decrypt every TLS 1.3 connection in `packets` (IP packets, by capture index) with the
 * key log. Returns, per packet index, what it carried once decrypted, in order; a record
 * that cannot be opened is there too, with the reason.
 */
export function decryptTls(
  packets: ReadonlyArray<{ index: number; ip: Uint8Array }>,
  keylog: KeyLog,
): Map<number, Decrypted[]> {
  const out = new Map<number, Decrypted[]>();
  const add = (packet: number, d: Decrypted) => {
    const list = out.get(packet);
    if (!list) return void out.set(packet, [d]);
    // Handshake messages in consecutive records of one packet read as one line, as Wireshark shows them.
    const last = list.at(-1);
    if (last?.messages && d.messages) {
      last.messages.push(...d.messages);
      last.text = `TLS (decrypted) ${last.messages.join(', ')}`;
      if (last.bytes && d.bytes) last.bytes = concatBytes(last.bytes, d.bytes);
      return;
    }
    list.push(d);
  };
  const conns = new Map<string, Connection>();
  let tooMany = false;
  for (const { index, ip } of packets) {
    let src: string;
    let dst: string;
    let payload: Uint8Array;
    try {
      const v = ip[0]! >> 4;
      if (v === 4) {
        const p = decodeIpv4(ip, { verifyChecksum: false });
        if (p.protocol !== IPPROTO_TCP || p.fragmentOffset !== 0 || p.moreFragments) continue;
        ({ src, dst, payload } = p);
      } else if (v === 6) {
        const p = decodeIpv6(ip);
        if (p.nextHeader !== IPPROTO_TCP) continue;
        ({ src, dst, payload } = p);
      } else continue;
    } catch (e) {
      if (e instanceof ParseError) continue;
      throw e;
    }
    let seg: ReturnType<typeof decodeSegment>;
    try {
      seg = decodeSegment(payload, { src, dst }, { verifyChecksum: false });
    } catch (e) {
      if (e instanceof ParseError) continue;
      throw e;
    }
    const from = `${src}:${seg.srcPort}`;
    const to = `${dst}:${seg.dstPort}`;
    const key = from < to ? `${from} ${to}` : `${to} ${from}`;
    let conn = conns.get(key);
    // A SYN (not a retransmitted one) starts a new connection on these ports.
    const synOnly = (seg.flags & SYN) !== 0 && (seg.flags & ACK) === 0;
    if (!conn || (synOnly && conn.dirs.get(from)?.next !== (seg.seq + 1) >>> 0)) {
      if (!conn && conns.size >= MAX_CONNECTIONS) {
        if (!tooMany)
          add(index, {
            layer: 'tls-decrypted',
            text: `TLS not decrypted: more than ${MAX_CONNECTIONS} TCP connections followed`,
          });
        tooMany = true;
        continue;
      }
      conn = { dirs: new Map(), clientRandom: undefined, suite: undefined };
      conns.set(key, conn);
    }
    let dir = conn.dirs.get(from);
    if (!dir) {
      dir = new Direction(from);
      conn.dirs.set(from, dir);
    }
    // The SYN takes one sequence number (RFC 9293 §3.4); data starts after it.
    if (seg.flags & SYN) {
      dir.next = (seg.seq + 1) >>> 0;
      continue;
    }
    if (seg.payload.length > 0) {
      const c = conn;
      const d = dir;
      d.segment(
        seg.seq >>> 0,
        seg.payload,
        index,
        (record, packet) => onRecord(c, d, record, packet, keylog, add),
        (reason, packet) => add(packet, { layer: 'tls-decrypted', text: `TLS not decrypted: ${reason}` }),
      );
    }
  }
  return out;
}

function onRecord(
  conn: Connection,
  dir: Direction,
  record: Uint8Array,
  packet: number,
  keylog: KeyLog,
  add: (packet: number, d: Decrypted) => void,
): void {
  const type = record[0]!;
  const body = record.subarray(5);
  const tls12 = () =>
    add(packet, {
      layer: 'tls-decrypted',
      text: 'TLS not decrypted: the ServerHello chose TLS 1.2 or older (only TLS 1.3 is decrypted)',
    });
  if (type === 20) {
    // change_cipher_spec: compatibility only in TLS 1.3 (§D.4); in TLS 1.2 the records after it are encrypted.
    if (conn.tls12) dir.afterCcs = true;
    return;
  }
  if (type === 22 && conn.tls12 && dir.afterCcs) return void tls12();
  if (type === 22) {
    // Plaintext handshake: ClientHello and ServerHello (and a HelloRetryRequest).
    let msgs: Uint8Array[];
    try {
      msgs = dir.handshake(body, true);
    } catch (e) {
      dir.fail((e as Error).message, packet, (reason) =>
        add(packet, { layer: 'tls-decrypted', text: `TLS not decrypted: ${reason}` }),
      );
      return;
    }
    for (const m of msgs) {
      if (m[0] === 2 && !negotiatesTls13(m)) conn.tls12 = true;
      try {
        const h = decodeHandshake(m);
        if (h.msgType === 'client_hello') {
          dir.isClient = true;
          // §4.1.2: the second ClientHello after a HelloRetryRequest keeps the same random.
          conn.clientRandom ??= hex(h.random);
        } else if (h.msgType === 'server_hello' && hex(h.random) !== HELLO_RETRY_RANDOM) {
          conn.suite = CIPHER_SUITES.get(h.cipherSuite);
        }
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
      }
    }
    return;
  }
  if (type !== 23) return; // a plaintext alert: the ladder shows it already
  if (conn.tls12) return void tls12();
  if (!conn.clientRandom)
    return void add(packet, { layer: 'tls-decrypted', text: 'TLS not decrypted: no ClientHello seen' });
  const cr = conn.clientRandom;
  const side = dir.isClient ? 'CLIENT' : 'SERVER';
  const missing = (label: string) =>
    add(packet, {
      layer: 'tls-decrypted',
      text: `TLS not decrypted: no ${label} for client_random ${cr.slice(0, 16)}… in the key log`,
    });
  /** Switch this direction to its handshake keys (RFC 8446 §7.1); false when that cannot be done yet. */
  const toHandshake = (): boolean => {
    const secret = keylog.get(`${side}_HANDSHAKE_TRAFFIC_SECRET ${cr}`);
    if (!conn.suite || !secret) return false;
    dir.secret = secret;
    dir.protection = new RecordProtection(nobleCrypto, conn.suite, secret);
    dir.epoch = 'handshake';
    return true;
  };
  if (dir.epoch === 'plain' && dir.isClient && !conn.suite) {
    // §2.3: 0-RTT data before the ServerHello, under the early traffic secret. The suite is
    // the resumed session's, not yet named on the wire: the one whose key opens the record.
    const early = keylog.get(`CLIENT_EARLY_TRAFFIC_SECRET ${cr}`);
    if (!early) return void missing('CLIENT_EARLY_TRAFFIC_SECRET (0-RTT data before the ServerHello)');
    for (const candidate of CIPHER_SUITES.values()) {
      if (candidate.hashLength !== early.length) continue;
      const trial = new RecordProtection(nobleCrypto, candidate, early);
      try {
        trial.open(record);
      } catch {
        continue;
      }
      dir.secret = early;
      dir.protection = new RecordProtection(nobleCrypto, candidate, early);
      dir.epoch = 'early';
      break;
    }
    if (dir.epoch !== 'early')
      return void add(packet, {
        layer: 'tls-decrypted',
        text: 'TLS record not decrypted (early keys): no cipher suite opens it with CLIENT_EARLY_TRAFFIC_SECRET',
      });
  }
  if (dir.epoch === 'plain') {
    if (!conn.suite)
      return void add(packet, {
        layer: 'tls-decrypted',
        text: 'TLS not decrypted: no ServerHello (cipher suite) seen',
      });
    if (!toHandshake()) return void missing(`${side}_HANDSHAKE_TRAFFIC_SECRET`);
  }
  let prot = dir.protection;
  if (!prot) return;
  let inner: { type: number; content: Uint8Array };
  try {
    inner = prot.open(record);
  } catch (e) {
    // A server that rejects 0-RTT gets no EndOfEarlyData (§4.2.10): the client's next records
    // are under its handshake keys.
    let reopened: { type: number; content: Uint8Array } | undefined;
    if (dir.epoch === 'early' && toHandshake() && dir.protection) {
      prot = dir.protection;
      try {
        reopened = prot.open(record);
      } catch {}
    }
    if (!reopened)
      return void add(packet, {
        layer: 'tls-decrypted',
        text: `TLS record not decrypted (${dir.epoch} keys, record ${prot.sequenceNumber}): ${(e as Error).message}`,
      });
    inner = reopened;
  }
  if (inner.type === 22) {
    let msgs: Uint8Array[];
    try {
      msgs = dir.handshake(inner.content, false);
    } catch (e) {
      return void add(packet, { layer: 'tls-decrypted', text: `TLS (decrypted) ${(e as Error).message}` });
    }
    const names: string[] = [];
    for (const m of msgs) {
      const t = m[0]!;
      names.push(HANDSHAKE_NAMES[t] ?? `handshake type ${t}`);
      if (t === 5 && dir.epoch === 'early') {
        // §4.5: EndOfEarlyData is the last record under the early keys.
        if (!toHandshake()) names.push('(no CLIENT_HANDSHAKE_TRAFFIC_SECRET in the key log)');
      } else if (t === 20 && dir.epoch === 'handshake') {
        // §7.1: after its Finished, a side sends under its application traffic secret.
        const app = keylog.get(`${side}_TRAFFIC_SECRET_0 ${conn.clientRandom}`);
        dir.epoch = 'application';
        dir.secret = app;
        dir.protection = app ? new RecordProtection(nobleCrypto, prot.suite, app) : undefined;
        if (!app)
          names.push(`(no ${side}_TRAFFIC_SECRET_0 in the key log: application data stays encrypted)`);
      } else if (t === 24 && dir.secret) {
        // §4.6.3, §7.2: the sender's next records use the next generation of its secret.
        dir.secret = nextTrafficSecret(nobleCrypto, prot.suite.hash, dir.secret);
        dir.protection = new RecordProtection(nobleCrypto, prot.suite, dir.secret);
      }
    }
    if (names.length > 0)
      add(packet, {
        layer: 'tls-decrypted',
        text: `TLS (decrypted) ${names.join(', ')}`,
        bytes: inner.content,
        messages: names,
      });
    return;
  }
  if (inner.type === 21) {
    const level = inner.content[0] === 2 ? 'fatal' : 'warning';
    const desc = inner.content[1] ?? -1;
    add(packet, {
      layer: 'tls-decrypted',
      text: `TLS (decrypted) Alert ${level} ${ALERTS[desc] ?? desc}`,
      bytes: inner.content,
    });
    return;
  }
  if (inner.type === 23) add(packet, describeAppData(inner.content));
}
