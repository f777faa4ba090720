import { ByteReader, ByteWriter } from '@stepwire/wire';
import { MAX_CID_LENGTH } from './packet/header.ts';
import {
  readVarint,
  readVarintLimit,
  readVarintLimitAtMostPow2,
  varintLength,
  writeVarint,
} from './packet/varint.ts';

/**
 * QUIC transport parameters (RFC 9000 §18), carried in TLS's quic_transport_parameters
 * extension (RFC 9001 §8.2). Each parameter is ID (i), Length (i), Value (..).
 *
 * A parameter that is absent is undefined here (not its default), so a decoded set says
 * exactly what the peer sent; `effectiveTransportParameters` fills the §18.2 defaults.
 * Unknown parameters (including the reserved 31*N+27 grease IDs, §18.1) are kept in order
 * so an encoded set round-trips.
 */

const LAYER = 'quic-transport-parameters';

/** RFC 9000 §18.2, Table 6; RFC 9221 §3 for max_datagram_frame_size. */
export const TransportParameterId = {
  original_destination_connection_id: 0x00,
  max_idle_timeout: 0x01,
  stateless_reset_token: 0x02,
  max_udp_payload_size: 0x03,
  initial_max_data: 0x04,
  initial_max_stream_data_bidi_local: 0x05,
  initial_max_stream_data_bidi_remote: 0x06,
  initial_max_stream_data_uni: 0x07,
  initial_max_streams_bidi: 0x08,
  initial_max_streams_uni: 0x09,
  ack_delay_exponent: 0x0a,
  max_ack_delay: 0x0b,
  disable_active_migration: 0x0c,
  preferred_address: 0x0d,
  active_connection_id_limit: 0x0e,
  initial_source_connection_id: 0x0f,
  retry_source_connection_id: 0x10,
  version_information: 0x11,
  max_datagram_frame_size: 0x20,
  grease_quic_bit: 0x2ab2,
} as const;

/** RFC 9368 §3: the version the sender uses and the versions it would use. */
export interface VersionInformation {
  chosenVersion: number;
  availableVersions: number[];
}

/** RFC 9000 §18.2: the server's preferred address. */
export interface PreferredAddress {
  ipv4Address: Uint8Array;
  ipv4Port: number;
  ipv6Address: Uint8Array;
  ipv6Port: number;
  connectionId: Uint8Array;
  statelessResetToken: Uint8Array;
}

export interface UnknownTransportParameter {
  id: number;
  value: Uint8Array;
}

export interface TransportParameters {
  original_destination_connection_id?: Uint8Array;
  /** Milliseconds; 0 or absent disables the idle timeout. */
  max_idle_timeout?: number;
  stateless_reset_token?: Uint8Array;
  max_udp_payload_size?: number;
  initial_max_data?: number;
  initial_max_stream_data_bidi_local?: number;
  initial_max_stream_data_bidi_remote?: number;
  initial_max_stream_data_uni?: number;
  initial_max_streams_bidi?: number;
  initial_max_streams_uni?: number;
  ack_delay_exponent?: number;
  /** Milliseconds. */
  max_ack_delay?: number;
  disable_active_migration?: boolean;
  preferred_address?: PreferredAddress;
  active_connection_id_limit?: number;
  initial_source_connection_id?: Uint8Array;
  retry_source_connection_id?: Uint8Array;
  max_datagram_frame_size?: number;
  /** RFC 9368 §3 (compatible version negotiation). */
  version_information?: VersionInformation;
  /** RFC 9287 §3: the sender accepts packets with the fixed bit set to 0. */
  grease_quic_bit?: boolean;
  unknown?: UnknownTransportParameter[];
}

type IntegerName =
  | 'max_idle_timeout'
  | 'max_udp_payload_size'
  | 'initial_max_data'
  | 'initial_max_stream_data_bidi_local'
  | 'initial_max_stream_data_bidi_remote'
  | 'initial_max_stream_data_uni'
  | 'initial_max_streams_bidi'
  | 'initial_max_streams_uni'
  | 'ack_delay_exponent'
  | 'max_ack_delay'
  | 'active_connection_id_limit'
  | 'max_datagram_frame_size';
type CidName =
  | 'original_destination_connection_id'
  | 'initial_source_connection_id'
  | 'retry_source_connection_id';

const INTEGER_PARAMS: readonly IntegerName[] = [
  'max_idle_timeout',
  'max_udp_payload_size',
  'initial_max_data',
  'initial_max_stream_data_bidi_local',
  'initial_max_stream_data_bidi_remote',
  'initial_max_stream_data_uni',
  'initial_max_streams_bidi',
  'initial_max_streams_uni',
  'ack_delay_exponent',
  'max_ack_delay',
  'active_connection_id_limit',
  'max_datagram_frame_size',
];
const CID_PARAMS: readonly CidName[] = [
  'original_destination_connection_id',
  'initial_source_connection_id',
  'retry_source_connection_id',
];

/**
 * RFC 9000 §18.2's limits on values: a value outside them is a TRANSPORT_PARAMETER_ERROR.
 * Each returns the reason, or undefined when the value is allowed.
 */
const INTEGER_LIMITS: Partial<Record<IntegerName, (v: number) => string | undefined>> = {
  max_udp_payload_size: (v) => (v < 1200 ? 'below 1200 (RFC 9000 §18.2)' : undefined),
  ack_delay_exponent: (v) => (v > 20 ? 'above 20 (RFC 9000 §18.2)' : undefined),
  max_ack_delay: (v) => (v >= 2 ** 14 ? 'not below 2^14 (RFC 9000 §18.2)' : undefined),
  initial_max_streams_bidi: (v) => (v > 2 ** 60 ? 'above 2^60 (RFC 9000 §18.2)' : undefined),
  initial_max_streams_uni: (v) => (v > 2 ** 60 ? 'above 2^60 (RFC 9000 §18.2)' : undefined),
  active_connection_id_limit: (v) => (v < 2 ? 'below 2 (RFC 9000 §18.2)' : undefined),
};

/** The defaults of RFC 9000 §18.2 for absent parameters. */
export const TRANSPORT_PARAMETER_DEFAULTS = {
  max_idle_timeout: 0,
  max_udp_payload_size: 65527,
  initial_max_data: 0,
  initial_max_stream_data_bidi_local: 0,
  initial_max_stream_data_bidi_remote: 0,
  initial_max_stream_data_uni: 0,
  initial_max_streams_bidi: 0,
  initial_max_streams_uni: 0,
  ack_delay_exponent: 3,
  max_ack_delay: 25,
  disable_active_migration: false,
  active_connection_id_limit: 2,
  /** RFC 9221 §3: absent means DATAGRAM frames are not accepted. */
  max_datagram_frame_size: 0,
} as const;

export type EffectiveTransportParameters = TransportParameters & typeof TRANSPORT_PARAMETER_DEFAULTS;

export function effectiveTransportParameters(p: TransportParameters): EffectiveTransportParameters {
  const out: Record<string, unknown> = { ...TRANSPORT_PARAMETER_DEFAULTS };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v;
  return out as unknown as EffectiveTransportParameters;
}

function writeParam(w: ByteWriter, id: number, value: Uint8Array): void {
  writeVarint(w, id);
  writeVarint(w, value.length);
  w.bytes(value);
}

function varintBytes(v: number): Uint8Array {
  const w = new ByteWriter(8);
  writeVarint(w, v);
  return w.finish().slice();
}

export function encodePreferredAddress(a: PreferredAddress): Uint8Array {
  if (a.ipv4Address.length !== 4 || a.ipv6Address.length !== 16)
    throw new RangeError('address lengths are 4 and 16');
  if (a.connectionId.length < 1 || a.connectionId.length > MAX_CID_LENGTH) {
    throw new RangeError('preferred_address connection ID must be 1..20 bytes (RFC 9000 §18.2)');
  }
  if (a.statelessResetToken.length !== 16) throw new RangeError('statelessResetToken is 16 bytes');
  const w = new ByteWriter(64);
  w.bytes(a.ipv4Address).u16(a.ipv4Port).bytes(a.ipv6Address).u16(a.ipv6Port);
  w.u8(a.connectionId.length).bytes(a.connectionId).bytes(a.statelessResetToken);
  return w.finish().slice();
}

export function encodeTransportParameters(p: TransportParameters): Uint8Array {
  const ids = TransportParameterId;
  const entries: [number, Uint8Array][] = [];
  for (const name of CID_PARAMS) {
    const v = p[name];
    if (v === undefined) continue;
    if (v.length > MAX_CID_LENGTH) throw new RangeError(`${name} exceeds 20 bytes`);
    entries.push([ids[name], v]);
  }
  if (p.stateless_reset_token) {
    if (p.stateless_reset_token.length !== 16) throw new RangeError('stateless_reset_token is 16 bytes');
    entries.push([ids.stateless_reset_token, p.stateless_reset_token]);
  }
  for (const name of INTEGER_PARAMS) {
    const v = p[name];
    if (v === undefined) continue;
    const bad = INTEGER_LIMITS[name]?.(v);
    if (bad) throw new RangeError(`${name} ${v} is ${bad}`);
    entries.push([ids[name], varintBytes(v)]);
  }
  if (p.disable_active_migration) entries.push([ids.disable_active_migration, new Uint8Array(0)]);
  if (p.grease_quic_bit) entries.push([ids.grease_quic_bit, new Uint8Array(0)]);
  if (p.version_information) {
    const v = p.version_information;
    if (v.chosenVersion === 0) throw new RangeError('Chosen Version 0 is not allowed (RFC 9368 §3)');
    const w = new ByteWriter(4 + 4 * v.availableVersions.length);
    w.u32(v.chosenVersion);
    for (const a of v.availableVersions) w.u32(a);
    entries.push([ids.version_information, w.finish().slice()]);
  }
  if (p.preferred_address) entries.push([ids.preferred_address, encodePreferredAddress(p.preferred_address)]);
  // Parameters in ID order: the order carries no meaning (§18), this one is predictable.
  entries.sort((a, b) => a[0] - b[0]);
  const w = new ByteWriter(128);
  for (const [id, value] of entries) writeParam(w, id, value);
  for (const u of p.unknown ?? []) {
    if (KNOWN_IDS.has(u.id))
      throw new RangeError(`unknown parameter id 0x${u.id.toString(16)} is a known one`);
    writeParam(w, u.id, u.value);
  }
  return w.finish().slice();
}

const KNOWN_IDS = new Set<number>(Object.values(TransportParameterId));
const NAME_BY_ID = new Map<number, keyof typeof TransportParameterId>(
  Object.entries(TransportParameterId).map(([k, v]) => [v, k as keyof typeof TransportParameterId]),
);

function decodePreferredAddress(r: ByteReader): PreferredAddress {
  const ipv4Address = r.copy(4, 'ipv4Address');
  const ipv4Port = r.u16('ipv4Port');
  const ipv6Address = r.copy(16, 'ipv6Address');
  const ipv6Port = r.u16('ipv6Port');
  const at = r.offset;
  const len = r.u8('connectionIdLength');
  // §18.2: a zero-length connection ID here is a TRANSPORT_PARAMETER_ERROR; v1 caps it at 20.
  if (len < 1 || len > MAX_CID_LENGTH)
    r.fail('connectionIdLength', `${len} is not 1..20 (RFC 9000 §18.2)`, at);
  const connectionId = r.copy(len, 'connectionId');
  const statelessResetToken = r.copy(16, 'statelessResetToken');
  r.end('preferred_address');
  return { ipv4Address, ipv4Port, ipv6Address, ipv6Port, connectionId, statelessResetToken };
}

/**
 * Decodes a transport parameter list. Every failure is a ParseError, which the connection
 * answers with TRANSPORT_PARAMETER_ERROR (RFC 9000 §7.4, §18.2): a duplicate parameter, a
 * value that does not fill its length exactly, or a value outside §18.2's limits.
 */
export function decodeTransportParameters(bytes: Uint8Array): TransportParameters {
  const r = new ByteReader(bytes, LAYER);
  const out: TransportParameters = {};
  const seen = new Set<number>();
  while (!r.atEnd) {
    const at = r.offset;
    const id = readVarint(r, 'id');
    const lenAt = r.offset;
    const length = readVarint(r, 'length');
    if (length > r.remaining)
      r.fail('length', `length ${length} exceeds the ${r.remaining} byte(s) left`, lenAt);
    const v = r.sub(length, 'value');
    // §7.4: "An endpoint MUST NOT send a parameter more than once in a given transport
    // parameters extension" — and must treat it as TRANSPORT_PARAMETER_ERROR.
    if (seen.has(id)) r.fail('id', `parameter 0x${id.toString(16)} appears twice (RFC 9000 §7.4)`, at);
    seen.add(id);
    const name = NAME_BY_ID.get(id);
    if (name === undefined) {
      (out.unknown ??= []).push({ id, value: v.rest('value').slice() });
      continue;
    }
    switch (name) {
      case 'original_destination_connection_id':
      case 'initial_source_connection_id':
      case 'retry_source_connection_id':
        if (length > MAX_CID_LENGTH) v.fail(name, `connection ID of ${length} bytes exceeds 20`, 0);
        out[name] = v.rest(name).slice();
        break;
      case 'stateless_reset_token':
        if (length !== 16) v.fail(name, 'a stateless reset token is 16 bytes (RFC 9000 §18.2)', 0);
        out[name] = v.rest(name).slice();
        break;
      case 'disable_active_migration':
      case 'grease_quic_bit':
        // RFC 9000 §18.2 and RFC 9287 §3: both are zero-length flags.
        if (length !== 0) v.fail(name, `${name} has a zero-length value`, 0);
        out[name] = true;
        break;
      case 'preferred_address':
        out[name] = decodePreferredAddress(v);
        break;
      case 'version_information': {
        // RFC 9368 §3: a length that is not a positive multiple of 4, or a Chosen Version of 0,
        // is a TRANSPORT_PARAMETER_ERROR.
        if (length < 4 || length % 4 !== 0)
          v.fail(name, `length ${length} is not a positive multiple of 4 (RFC 9368 §3)`, 0);
        const chosenVersion = v.u32('chosenVersion');
        if (chosenVersion === 0) v.fail(name, 'Chosen Version is 0 (RFC 9368 §3)', 0);
        const availableVersions: number[] = [];
        while (!v.atEnd) availableVersions.push(v.u32('availableVersion'));
        out[name] = { chosenVersion, availableVersions };
        break;
      }
      default: {
        const streams = name === 'initial_max_streams_bidi' || name === 'initial_max_streams_uni';
        const value = streams ? readVarintLimitAtMostPow2(v, name, 60) : readVarintLimit(v, name);
        // §18.2: a stream count above 2^60 is a TRANSPORT_PARAMETER_ERROR.
        if (value === undefined) return v.fail(name, 'above 2^60 (RFC 9000 §18.2)', 0);
        v.end(name);
        const bad = INTEGER_LIMITS[name]?.(value);
        if (bad) v.fail(name, `${value} is ${bad}`, 0);
        out[name] = value;
      }
    }
  }
  return out;
}

/**
 * RFC 9000 §18.2: parameters only a server may send. "A client MUST NOT include any
 * server-only transport parameter"; a server receiving one answers TRANSPORT_PARAMETER_ERROR.
 */
export const SERVER_ONLY_PARAMETERS = [
  'original_destination_connection_id',
  'preferred_address',
  'retry_source_connection_id',
  'stateless_reset_token',
] as const;

/** The reason a peer's parameter set is not acceptable from that role, or undefined. */
export function checkTransportParametersFrom(
  p: TransportParameters,
  sender: 'client' | 'server',
): string | undefined {
  if (sender === 'client') {
    for (const name of SERVER_ONLY_PARAMETERS) {
      if (p[name] !== undefined) return `a client sent the server-only parameter ${name} (RFC 9000 §18.2)`;
    }
  }
  // §7.3: every endpoint sends initial_source_connection_id; a server always sends original_destination_connection_id.
  if (p.initial_source_connection_id === undefined)
    return 'initial_source_connection_id is missing (RFC 9000 §7.3)';
  if (sender === 'server' && p.original_destination_connection_id === undefined) {
    return 'original_destination_connection_id is missing (RFC 9000 §7.3)';
  }
  return undefined;
}

/** Encoded size of one integer parameter, for callers budgeting a ClientHello. */
export function integerParameterLength(id: number, v: number): number {
  return varintLength(id) + varintLength(varintLength(v)) + varintLength(v);
}
