import { ByteReader, type ByteWriter, ParseError } from '@stepwire/wire';

/** The layer name every TLS decoder puts in its ParseError. */
export const LAYER = 'tls';

export const reader = (bytes: Uint8Array, base = 0): ByteReader => new ByteReader(bytes, LAYER, base);

export function parseFail(field: string, offset: number, reason: string): never {
  throw new ParseError(LAYER, field, offset, reason);
}

/** ContentType (RFC 8446 §5.1). */
export const ContentType = {
  invalid: 0,
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
} as const;
export type ContentTypeName = keyof typeof ContentType;

/** HandshakeType (RFC 8446 §4). */
export const HandshakeType = {
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  end_of_early_data: 5,
  encrypted_extensions: 8,
  certificate: 11,
  certificate_request: 13,
  certificate_verify: 15,
  finished: 20,
  key_update: 24,
  /** RFC 8879 §4. */
  compressed_certificate: 25,
  message_hash: 254,
} as const;

/** ExtensionType (RFC 8446 §4.2, RFC 8449 for record_size_limit). */
export const ExtensionType = {
  server_name: 0,
  max_fragment_length: 1,
  status_request: 5,
  supported_groups: 10,
  signature_algorithms: 13,
  use_srtp: 14,
  heartbeat: 15,
  application_layer_protocol_negotiation: 16,
  signed_certificate_timestamp: 18,
  client_certificate_type: 19,
  server_certificate_type: 20,
  padding: 21,
  record_size_limit: 28,
  /** RFC 8879 §3. */
  compress_certificate: 27,
  pre_shared_key: 41,
  early_data: 42,
  supported_versions: 43,
  cookie: 44,
  psk_key_exchange_modes: 45,
  certificate_authorities: 47,
  oid_filters: 48,
  post_handshake_auth: 49,
  signature_algorithms_cert: 50,
  key_share: 51,
} as const;

/** NamedGroup (RFC 8446 §4.2.7). */
export const NamedGroup = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  secp521r1: 0x0019,
  x25519: 0x001d,
  x448: 0x001e,
  ffdhe2048: 0x0100,
  ffdhe3072: 0x0101,
  ffdhe4096: 0x0102,
  ffdhe6144: 0x0103,
  ffdhe8192: 0x0104,
  /** Hybrid ML-KEM-768 + X25519 (draft-ietf-tls-ecdhe-mlkem; IANA TLS Supported Groups 4588). */
  X25519MLKEM768: 0x11ec,
} as const;

/** SignatureScheme (RFC 8446 §4.2.3). */
export const SignatureScheme = {
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  ecdsa_secp521r1_sha512: 0x0603,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  ed25519: 0x0807,
  ed448: 0x0808,
  rsa_pss_pss_sha256: 0x0809,
  rsa_pss_pss_sha384: 0x080a,
  rsa_pss_pss_sha512: 0x080b,
  rsa_pkcs1_sha1: 0x0201,
  ecdsa_sha1: 0x0203,
} as const;

/** CipherSuite (RFC 8446 §B.4). */
export const CipherSuite = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_AES_128_CCM_SHA256: 0x1304,
  TLS_AES_128_CCM_8_SHA256: 0x1305,
} as const;

/** PskKeyExchangeMode (RFC 8446 §4.2.9). */
export const PskKeyExchangeMode = { psk_ke: 0, psk_dhe_ke: 1 } as const;

/** ProtocolVersion values (RFC 8446 §4.1.2, §5.1). */
export const TLS_1_2 = 0x0303;
export const TLS_1_3 = 0x0304;

/** Reverse lookup for traces: the RFC name of a code point, or its hex value. */
export function nameOf(table: Record<string, number>, value: number): string {
  for (const [k, v] of Object.entries(table)) if (v === value) return k;
  return `0x${value.toString(16).padStart(4, '0')}`;
}

// Variable-length vectors (RFC 8446 §3.4): a length prefix of 1, 2 or 3 bytes, then the bytes.

export function readVector(
  r: ByteReader,
  lenBytes: 1 | 2 | 3,
  field: string,
  min = 0,
  max = Infinity,
): ByteReader {
  const at = r.offset;
  const n = lenBytes === 1 ? r.u8(field) : lenBytes === 2 ? r.u16(field) : r.u24(field);
  if (n < min || n > max) r.fail(field, `length ${n} outside ${min}..${max}`, at);
  return r.sub(n, field);
}

export function readOpaque(
  r: ByteReader,
  lenBytes: 1 | 2 | 3,
  field: string,
  min = 0,
  max = Infinity,
): Uint8Array {
  return readVector(r, lenBytes, field, min, max).rest(field).slice();
}

/** A list of u16 values inside a vector with a `lenBytes` prefix. */
export function readU16List(
  r: ByteReader,
  lenBytes: 1 | 2,
  field: string,
  min = 0,
  max = Infinity,
): number[] {
  const v = readVector(r, lenBytes, field, min, max);
  if (v.remaining % 2 !== 0) v.fail(field, 'odd length for a list of u16');
  const out: number[] = [];
  while (!v.atEnd) out.push(v.u16(field));
  return out;
}

function writeLength(w: ByteWriter, lenBytes: 1 | 2 | 3, n: number, field: string): void {
  const max = lenBytes === 1 ? 0xff : lenBytes === 2 ? 0xffff : 0xffffff;
  if (n > max) throw new RangeError(`${field}: ${n} bytes does not fit a ${lenBytes}-byte length`);
  if (lenBytes === 1) w.u8(n);
  else if (lenBytes === 2) w.u16(n);
  else w.u24(n);
}

/** Write `body` into `w` behind a length prefix, patching the length afterwards. */
export function writeVector(
  w: ByteWriter,
  lenBytes: 1 | 2 | 3,
  field: string,
  body: (w: ByteWriter) => void,
): void {
  const at = w.length;
  if (lenBytes === 1) w.u8(0);
  else if (lenBytes === 2) w.u16(0);
  else w.u24(0);
  body(w);
  const n = w.length - at - lenBytes;
  const max = lenBytes === 1 ? 0xff : lenBytes === 2 ? 0xffff : 0xffffff;
  if (n > max) throw new RangeError(`${field}: ${n} bytes does not fit a ${lenBytes}-byte length`);
  if (lenBytes === 1) w.patchU8(at, n);
  else if (lenBytes === 2) w.patchU16(at, n);
  else w.patchU24(at, n);
}

export function writeOpaque(w: ByteWriter, lenBytes: 1 | 2 | 3, data: Uint8Array, field: string): void {
  writeLength(w, lenBytes, data.length, field);
  w.bytes(data);
}

export function writeU16List(w: ByteWriter, lenBytes: 1 | 2, list: readonly number[], field: string): void {
  writeLength(w, lenBytes, list.length * 2, field);
  for (const v of list) w.u16(v);
}

/** Bytes as a latin1 string: every byte value maps to one char and back, so any bytes round-trip. */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

export function fromLatin1(s: string, field: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`${field}: character ${c} is not a single byte`);
    out[i] = c;
  }
  return out;
}
