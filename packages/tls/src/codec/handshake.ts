import { type ByteReader, ByteWriter, bytesEqual, concatBytes } from '@stepwire/wire';
import {
  HandshakeType,
  parseFail,
  reader,
  readOpaque,
  readU16List,
  readVector,
  writeOpaque,
  writeVector,
} from './common.ts';
import {
  bindersLength,
  type Extension,
  type ExtensionContext,
  readExtensions,
  writeExtensions,
} from './extensions.ts';

/**
 * RFC 8446 §4.1.3: a ServerHello whose random is SHA-256("HelloRetryRequest") is a
 * HelloRetryRequest.
 */
export const HELLO_RETRY_REQUEST_RANDOM = Uint8Array.from([
  0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2,
  0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
]);

/** RFC 8446 §4.1.3: the last 8 bytes of a TLS 1.3 server's random when it negotiates TLS 1.2 / 1.1 or below. */
export const DOWNGRADE_TLS12 = Uint8Array.from([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01]);
export const DOWNGRADE_TLS11 = Uint8Array.from([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x00]);

export interface ClientHello {
  msgType: 'client_hello';
  legacyVersion: number;
  random: Uint8Array;
  legacySessionId: Uint8Array;
  cipherSuites: number[];
  legacyCompressionMethods: Uint8Array;
  extensions: Extension[];
}

export interface ServerHello {
  msgType: 'server_hello';
  legacyVersion: number;
  random: Uint8Array;
  legacySessionIdEcho: Uint8Array;
  cipherSuite: number;
  legacyCompressionMethod: number;
  extensions: Extension[];
}

/** A ServerHello with the special random (RFC 8446 §4.1.4); the random is implied. */
export interface HelloRetryRequest {
  msgType: 'hello_retry_request';
  legacyVersion: number;
  legacySessionIdEcho: Uint8Array;
  cipherSuite: number;
  legacyCompressionMethod: number;
  extensions: Extension[];
}

export interface EncryptedExtensions {
  msgType: 'encrypted_extensions';
  extensions: Extension[];
}

export interface CertificateRequest {
  msgType: 'certificate_request';
  certificateRequestContext: Uint8Array;
  extensions: Extension[];
}

export interface CertificateEntry {
  /** DER X.509 certificate (or a RawPublicKey SubjectPublicKeyInfo, RFC 7250). */
  certData: Uint8Array;
  extensions: Extension[];
}

export interface Certificate {
  msgType: 'certificate';
  certificateRequestContext: Uint8Array;
  certificateList: CertificateEntry[];
}

export interface CertificateVerify {
  msgType: 'certificate_verify';
  algorithm: number;
  signature: Uint8Array;
}

export interface Finished {
  msgType: 'finished';
  verifyData: Uint8Array;
}

export interface NewSessionTicket {
  msgType: 'new_session_ticket';
  ticketLifetime: number;
  ticketAgeAdd: number;
  ticketNonce: Uint8Array;
  ticket: Uint8Array;
  extensions: Extension[];
}

export interface EndOfEarlyData {
  msgType: 'end_of_early_data';
}

/** KeyUpdateRequest (RFC 8446 §4.6.3). */
export const KeyUpdateRequest = { update_not_requested: 0, update_requested: 1 } as const;

export interface KeyUpdate {
  msgType: 'key_update';
  requestUpdate: number;
}

export type HandshakeMessage =
  | ClientHello
  | ServerHello
  | HelloRetryRequest
  | EncryptedExtensions
  | CertificateRequest
  | Certificate
  | CertificateVerify
  | Finished
  | NewSessionTicket
  | EndOfEarlyData
  | KeyUpdate
  | CompressedCertificate;

/**
 * CompressedCertificate (RFC 8879 §4): a Certificate message body, compressed. It stands in
 * the transcript as sent; the receiver decompresses and checks the length.
 */
export interface CompressedCertificate {
  msgType: 'compressed_certificate';
  /** CertificateCompressionAlgorithm: zlib 1, brotli 2, zstd 3 (RFC 8879 §7.3). */
  algorithm: number;
  /** uint24 uncompressed_length. */
  uncompressedLength: number;
  /** opaque compressed_certificate_message<1..2^24-1>. */
  compressedCertificateMessage: Uint8Array;
}

/** One framed handshake message (RFC 8446 §4): msg_type, a 24-bit length, the body. */
export interface HandshakeFrame {
  msgType: number;
  body: Uint8Array;
}

export function decodeHandshakeFrame(bytes: Uint8Array, base = 0): HandshakeFrame {
  const r = reader(bytes, base);
  const msgType = r.u8('handshake.msg_type');
  const body = readOpaque(r, 3, 'handshake.body');
  r.end('handshake');
  return { msgType, body };
}

export function encodeHandshakeFrame(f: HandshakeFrame): Uint8Array {
  const w = new ByteWriter(4 + f.body.length);
  w.u8(f.msgType);
  writeOpaque(w, 3, f.body, 'handshake.body');
  return w.finish();
}

/**
 * Reassembles handshake messages from record fragments (RFC 8446 §5.1: messages may be
 * split across and coalesced within records). `maxMessage` caps what a peer can make us buffer.
 */
export class HandshakeReassembler {
  private buf: Uint8Array = new Uint8Array(0);

  constructor(readonly maxMessage = 1 << 17) {}

  get buffered(): number {
    return this.buf.length;
  }

  /** True when no partial message waits: a key change must happen on a message boundary (§5.1). */
  get empty(): boolean {
    return this.buf.length === 0;
  }

  /** Add a handshake record's fragment; returns each complete message as its full bytes (header included). */
  push(fragment: Uint8Array): Uint8Array[] {
    const buf = this.buf.length === 0 ? fragment : concatBytes(this.buf, fragment);
    const out: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
      if (len > this.maxMessage) {
        parseFail(
          'handshake.length',
          at + 1,
          `message of ${len} bytes exceeds the ${this.maxMessage}-byte cap`,
        );
      }
      if (buf.length - at < 4 + len) break;
      out.push(buf.slice(at, at + 4 + len));
      at += 4 + len;
    }
    this.buf = buf.slice(at);
    return out;
  }
}

// Message bodies.

function readCipherSuites(r: ByteReader): number[] {
  // cipher_suites<2..2^16-2>
  return readU16List(r, 2, 'client_hello.cipher_suites', 2, 0xfffe);
}

function decodeClientHello(r: ByteReader): ClientHello {
  const legacyVersion = r.u16('client_hello.legacy_version');
  const random = r.copy(32, 'client_hello.random');
  const legacySessionId = readOpaque(r, 1, 'client_hello.legacy_session_id', 0, 32);
  const cipherSuites = readCipherSuites(r);
  const legacyCompressionMethods = readOpaque(r, 1, 'client_hello.legacy_compression_methods', 1);
  const extensions = readExtensions(r, 'client_hello');
  return {
    msgType: 'client_hello',
    legacyVersion,
    random,
    legacySessionId,
    cipherSuites,
    legacyCompressionMethods,
    extensions,
  };
}

function decodeServerHello(r: ByteReader): ServerHello | HelloRetryRequest {
  const legacyVersion = r.u16('server_hello.legacy_version');
  const random = r.copy(32, 'server_hello.random');
  const legacySessionIdEcho = readOpaque(r, 1, 'server_hello.legacy_session_id_echo', 0, 32);
  const cipherSuite = r.u16('server_hello.cipher_suite');
  const legacyCompressionMethod = r.u8('server_hello.legacy_compression_method');
  // RFC 8446 §4.1.3: the same structure means HelloRetryRequest when the random is the magic value.
  if (bytesEqual(random, HELLO_RETRY_REQUEST_RANDOM)) {
    const extensions = readExtensions(r, 'hello_retry_request');
    return {
      msgType: 'hello_retry_request',
      legacyVersion,
      legacySessionIdEcho,
      cipherSuite,
      legacyCompressionMethod,
      extensions,
    };
  }
  // RFC 5246 §7.4.1.3: a TLS 1.2 (or older) ServerHello may end here, without an extensions
  // block. Decoding it lets the client answer with the version alert RFC 8446 §4.1.3/§D.1 ask
  // for instead of a decode_error; a TLS 1.3 ServerHello always has supported_versions.
  const extensions = r.atEnd ? [] : readExtensions(r, 'server_hello');
  return {
    msgType: 'server_hello',
    legacyVersion,
    random,
    legacySessionIdEcho,
    cipherSuite,
    legacyCompressionMethod,
    extensions,
  };
}

function decodeCertificate(r: ByteReader): Certificate {
  const certificateRequestContext = readOpaque(r, 1, 'certificate.certificate_request_context');
  const list = readVector(r, 3, 'certificate.certificate_list');
  const certificateList: CertificateEntry[] = [];
  while (!list.atEnd) {
    const certData = readOpaque(list, 3, 'certificate.cert_data', 1);
    certificateList.push({ certData, extensions: readExtensions(list, 'certificate') });
  }
  return { msgType: 'certificate', certificateRequestContext, certificateList };
}

function decodeBody(msgType: number, r: ByteReader): HandshakeMessage {
  switch (msgType) {
    case HandshakeType.client_hello:
      return decodeClientHello(r);
    case HandshakeType.server_hello:
      return decodeServerHello(r);
    case HandshakeType.encrypted_extensions:
      return { msgType: 'encrypted_extensions', extensions: readExtensions(r, 'encrypted_extensions') };
    case HandshakeType.certificate_request: {
      const certificateRequestContext = readOpaque(r, 1, 'certificate_request.certificate_request_context');
      return {
        msgType: 'certificate_request',
        certificateRequestContext,
        extensions: readExtensions(r, 'certificate_request'),
      };
    }
    case HandshakeType.certificate:
      return decodeCertificate(r);
    case HandshakeType.certificate_verify: {
      const algorithm = r.u16('certificate_verify.algorithm');
      return {
        msgType: 'certificate_verify',
        algorithm,
        signature: readOpaque(r, 2, 'certificate_verify.signature'),
      };
    }
    case HandshakeType.finished:
      // verify_data is Hash.length bytes; the length is checked where the hash is known.
      return { msgType: 'finished', verifyData: r.rest('finished.verify_data').slice() };
    case HandshakeType.new_session_ticket: {
      const ticketLifetime = r.u32('new_session_ticket.ticket_lifetime');
      const ticketAgeAdd = r.u32('new_session_ticket.ticket_age_add');
      const ticketNonce = readOpaque(r, 1, 'new_session_ticket.ticket_nonce');
      const ticket = readOpaque(r, 2, 'new_session_ticket.ticket', 1);
      const extensions = readExtensions(r, 'new_session_ticket');
      return { msgType: 'new_session_ticket', ticketLifetime, ticketAgeAdd, ticketNonce, ticket, extensions };
    }
    case HandshakeType.end_of_early_data:
      return { msgType: 'end_of_early_data' };
    case HandshakeType.compressed_certificate: {
      const algorithm = r.u16('compressed_certificate.algorithm');
      const uncompressedLength = r.u24('compressed_certificate.uncompressed_length');
      const compressedCertificateMessage = readOpaque(
        r,
        3,
        'compressed_certificate.compressed_certificate_message',
        1,
      );
      return {
        msgType: 'compressed_certificate',
        algorithm,
        uncompressedLength,
        compressedCertificateMessage,
      };
    }
    case HandshakeType.key_update: {
      const requestUpdate = r.u8('key_update.request_update');
      // RFC 8446 §4.6.3: any other value is an illegal_parameter.
      if (requestUpdate > 1) r.fail('key_update.request_update', `invalid value ${requestUpdate}`, 0);
      return { msgType: 'key_update', requestUpdate };
    }
    default:
      return r.fail('handshake.msg_type', `unknown or unexpected handshake type ${msgType}`, 0);
  }
}

/** Decode one whole handshake message (4-byte header included). */
export function decodeHandshake(bytes: Uint8Array, base = 0): HandshakeMessage {
  const f = decodeHandshakeFrame(bytes, base);
  const r = reader(f.body, base + 4);
  const msg = decodeBody(f.msgType, r);
  r.end(`handshake type ${f.msgType}`);
  return msg;
}

const TYPE_CODE: Record<HandshakeMessage['msgType'], number> = {
  client_hello: HandshakeType.client_hello,
  server_hello: HandshakeType.server_hello,
  hello_retry_request: HandshakeType.server_hello,
  encrypted_extensions: HandshakeType.encrypted_extensions,
  certificate_request: HandshakeType.certificate_request,
  certificate: HandshakeType.certificate,
  certificate_verify: HandshakeType.certificate_verify,
  finished: HandshakeType.finished,
  new_session_ticket: HandshakeType.new_session_ticket,
  end_of_early_data: HandshakeType.end_of_early_data,
  key_update: HandshakeType.key_update,
  compressed_certificate: HandshakeType.compressed_certificate,
};

export function handshakeTypeCode(m: HandshakeMessage): number {
  return TYPE_CODE[m.msgType];
}

function writeFixed(w: ByteWriter, b: Uint8Array, n: number, field: string): void {
  if (b.length !== n) throw new RangeError(`${field} must be ${n} bytes`);
  w.bytes(b);
}

function encodeBody(w: ByteWriter, m: HandshakeMessage): void {
  switch (m.msgType) {
    case 'client_hello':
      w.u16(m.legacyVersion);
      writeFixed(w, m.random, 32, 'random');
      writeOpaque(w, 1, m.legacySessionId, 'legacy_session_id');
      writeVector(w, 2, 'cipher_suites', (l) => {
        for (const s of m.cipherSuites) l.u16(s);
      });
      writeOpaque(w, 1, m.legacyCompressionMethods, 'legacy_compression_methods');
      writeExtensions(w, m.extensions);
      return;
    case 'server_hello':
    case 'hello_retry_request':
      w.u16(m.legacyVersion);
      writeFixed(w, m.msgType === 'server_hello' ? m.random : HELLO_RETRY_REQUEST_RANDOM, 32, 'random');
      writeOpaque(w, 1, m.legacySessionIdEcho, 'legacy_session_id_echo');
      w.u16(m.cipherSuite).u8(m.legacyCompressionMethod);
      // An empty list is the extension-less ServerHello of RFC 5246 §7.4.1.3 (the TLS 1.3 block
      // cannot be empty), so the two encodings decode to the same value.
      if (m.msgType === 'hello_retry_request' || m.extensions.length > 0) writeExtensions(w, m.extensions);
      return;
    case 'encrypted_extensions':
      writeExtensions(w, m.extensions);
      return;
    case 'certificate_request':
      writeOpaque(w, 1, m.certificateRequestContext, 'certificate_request_context');
      writeExtensions(w, m.extensions);
      return;
    case 'certificate':
      writeOpaque(w, 1, m.certificateRequestContext, 'certificate_request_context');
      writeVector(w, 3, 'certificate_list', (l) => {
        for (const e of m.certificateList) {
          writeOpaque(l, 3, e.certData, 'cert_data');
          writeExtensions(l, e.extensions);
        }
      });
      return;
    case 'certificate_verify':
      w.u16(m.algorithm);
      writeOpaque(w, 2, m.signature, 'signature');
      return;
    case 'finished':
      w.bytes(m.verifyData);
      return;
    case 'new_session_ticket':
      w.u32(m.ticketLifetime).u32(m.ticketAgeAdd);
      writeOpaque(w, 1, m.ticketNonce, 'ticket_nonce');
      writeOpaque(w, 2, m.ticket, 'ticket');
      writeExtensions(w, m.extensions);
      return;
    case 'end_of_early_data':
      return;
    case 'key_update':
      w.u8(m.requestUpdate);
      return;
    case 'compressed_certificate':
      w.u16(m.algorithm).u24(m.uncompressedLength);
      writeOpaque(w, 3, m.compressedCertificateMessage, 'compressed_certificate_message');
      return;
  }
}

/** Encode a handshake message with its 4-byte header. */
export function encodeHandshake(m: HandshakeMessage): Uint8Array {
  const w = new ByteWriter(256);
  w.u8(handshakeTypeCode(m));
  writeVector(w, 3, 'handshake.body', (b) => encodeBody(b, m));
  return w.finish().slice();
}

/** The extensions context of a message, for code that handles extension blocks generically. */
export function extensionContextOf(m: HandshakeMessage): ExtensionContext | undefined {
  switch (m.msgType) {
    case 'client_hello':
    case 'server_hello':
    case 'hello_retry_request':
    case 'encrypted_extensions':
    case 'certificate_request':
    case 'new_session_ticket':
      return m.msgType;
    default:
      return undefined;
  }
}

/**
 * The ClientHello prefix the PSK binders are computed over (RFC 8446 §4.2.11.2): the whole
 * message (header included) up to but not including the binders list, which is the last
 * field of the last extension. `encoded` must be the encoding of `ch`.
 */
export function truncatedClientHello(encoded: Uint8Array, ch: ClientHello): Uint8Array {
  const last = ch.extensions[ch.extensions.length - 1];
  if (last?.type !== 'pre_shared_key' || !('binders' in last)) {
    throw new RangeError('ClientHello has no pre_shared_key extension last');
  }
  return encoded.subarray(0, encoded.length - bindersLength(last.binders));
}
