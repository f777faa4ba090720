import { type ByteReader, ByteWriter } from '@stepwire/wire';
import {
  ExtensionType,
  fromLatin1,
  latin1,
  readOpaque,
  readU16List,
  readVector,
  writeOpaque,
  writeU16List,
  writeVector,
} from './common.ts';

/** Which message an extension block sits in: several extensions change shape with it (RFC 8446 §4.2). */
export type ExtensionContext =
  | 'client_hello'
  | 'server_hello'
  | 'hello_retry_request'
  | 'encrypted_extensions'
  | 'certificate_request'
  | 'certificate'
  | 'new_session_ticket';

export interface KeyShareEntry {
  group: number;
  keyExchange: Uint8Array;
}

export interface PskIdentity {
  identity: Uint8Array;
  obfuscatedTicketAge: number;
}

/** server_name (RFC 6066 §3): one host_name in a ClientHello; empty when a server acknowledges it. */
export interface ServerNameExt {
  type: 'server_name';
  /** Bytes as latin1 (host names are ASCII); absent in the empty acknowledgement. */
  hostName?: string;
}
export interface SupportedGroupsExt {
  type: 'supported_groups';
  groups: number[];
}
export interface SignatureAlgorithmsExt {
  type: 'signature_algorithms';
  schemes: number[];
}
/** signature_algorithms_cert (RFC 8446 §4.2.3): schemes acceptable in certificates. */
export interface SignatureAlgorithmsCertExt {
  type: 'signature_algorithms_cert';
  schemes: number[];
}
/** application_layer_protocol_negotiation (RFC 7301 §3.1). Names as latin1 so any bytes survive. */
export interface AlpnExt {
  type: 'alpn';
  protocols: string[];
}
export interface SupportedVersionsClientExt {
  type: 'supported_versions';
  versions: number[];
}
export interface SupportedVersionsServerExt {
  type: 'supported_versions';
  selectedVersion: number;
}
export interface KeyShareClientHelloExt {
  type: 'key_share';
  clientShares: KeyShareEntry[];
}
export interface KeyShareServerHelloExt {
  type: 'key_share';
  serverShare: KeyShareEntry;
}
export interface KeyShareHelloRetryRequestExt {
  type: 'key_share';
  selectedGroup: number;
}
export interface PskKeyExchangeModesExt {
  type: 'psk_key_exchange_modes';
  modes: number[];
}
/** pre_shared_key in a ClientHello (RFC 8446 §4.2.11): binders pair with identities by index. */
export interface OfferedPsksExt {
  type: 'pre_shared_key';
  identities: PskIdentity[];
  binders: Uint8Array[];
}
export interface SelectedPskExt {
  type: 'pre_shared_key';
  selectedIdentity: number;
}
/** early_data (RFC 8446 §4.2.10): empty in ClientHello and EncryptedExtensions. */
export interface EarlyDataExt {
  type: 'early_data';
}
/** early_data in NewSessionTicket carries max_early_data_size. */
export interface EarlyDataTicketExt {
  type: 'early_data';
  maxEarlyDataSize: number;
}
export interface CookieExt {
  type: 'cookie';
  cookie: Uint8Array;
}
/** record_size_limit (RFC 8449 §4). */
export interface RecordSizeLimitExt {
  type: 'record_size_limit';
  limit: number;
}
/** post_handshake_auth (RFC 8446 §4.2.6): the client will answer a CertificateRequest after the handshake; empty. */
export interface PostHandshakeAuthExt {
  type: 'post_handshake_auth';
}
/** Any extension we do not interpret in this context, kept byte for byte. */
export interface RawExt {
  type: 'raw';
  code: number;
  data: Uint8Array;
}

export type Extension =
  | ServerNameExt
  | SupportedGroupsExt
  | SignatureAlgorithmsExt
  | SignatureAlgorithmsCertExt
  | AlpnExt
  | SupportedVersionsClientExt
  | SupportedVersionsServerExt
  | KeyShareClientHelloExt
  | KeyShareServerHelloExt
  | KeyShareHelloRetryRequestExt
  | PskKeyExchangeModesExt
  | OfferedPsksExt
  | SelectedPskExt
  | EarlyDataExt
  | EarlyDataTicketExt
  | CookieExt
  | RecordSizeLimitExt
  | PostHandshakeAuthExt
  | RawExt;

const T = ExtensionType;

/** Extensions we decode into structure, per context (RFC 8446 §4.2 table); all others stay raw. */
export const STRUCTURED: Record<ExtensionContext, ReadonlySet<number>> = {
  client_hello: new Set([
    T.server_name,
    T.supported_groups,
    T.signature_algorithms,
    T.signature_algorithms_cert,
    T.application_layer_protocol_negotiation,
    T.supported_versions,
    T.key_share,
    T.psk_key_exchange_modes,
    T.pre_shared_key,
    T.early_data,
    T.cookie,
    T.record_size_limit,
    T.post_handshake_auth,
  ]),
  server_hello: new Set([T.supported_versions, T.key_share, T.pre_shared_key]),
  hello_retry_request: new Set([T.supported_versions, T.key_share, T.cookie]),
  encrypted_extensions: new Set([
    T.server_name,
    T.supported_groups,
    T.application_layer_protocol_negotiation,
    T.early_data,
    T.record_size_limit,
  ]),
  certificate_request: new Set([T.signature_algorithms, T.signature_algorithms_cert]),
  certificate: new Set(),
  new_session_ticket: new Set([T.early_data]),
};

/** Minimum length of the extensions vector per message (RFC 8446 §4.1.2, §4.1.3, §4.3.2). */
const MIN_BLOCK: Record<ExtensionContext, number> = {
  client_hello: 8,
  server_hello: 6,
  hello_retry_request: 6,
  encrypted_extensions: 0,
  certificate_request: 2,
  certificate: 0,
  new_session_ticket: 0,
};
/** NewSessionTicket's block is <0..2^16-2> (RFC 8446 §4.6.1). */
const MAX_BLOCK: Record<ExtensionContext, number> = {
  client_hello: 0xffff,
  server_hello: 0xffff,
  hello_retry_request: 0xffff,
  encrypted_extensions: 0xffff,
  certificate_request: 0xffff,
  certificate: 0xffff,
  new_session_ticket: 0xfffe,
};

/** The wire code of an extension value. */
export function extensionCode(e: Extension): number {
  switch (e.type) {
    case 'raw':
      return e.code;
    case 'alpn':
      return T.application_layer_protocol_negotiation;
    default:
      return T[e.type];
  }
}

function decodeBody(code: number, r: ByteReader, ctx: ExtensionContext): Extension {
  switch (code) {
    case T.server_name: {
      if (ctx !== 'client_hello') {
        // RFC 6066 §3: the server's acknowledgement has empty extension_data.
        return { type: 'server_name' };
      }
      // ServerNameList server_name_list<1..2^16-1>; exactly one host_name is all TLS uses.
      const list = readVector(r, 2, 'server_name.server_name_list', 1);
      const nameType = list.u8('server_name.name_type');
      if (nameType !== 0) list.fail('server_name.name_type', `unsupported name type ${nameType}`);
      const host = readOpaque(list, 2, 'server_name.host_name', 1);
      // RFC 6066 §3: no more than one name of a type; host_name is the only type defined.
      list.end('server_name.server_name_list');
      return { type: 'server_name', hostName: latin1(host) };
    }
    case T.supported_groups:
      return { type: 'supported_groups', groups: readU16List(r, 2, 'supported_groups.named_group_list', 2) };
    case T.signature_algorithms:
    case T.signature_algorithms_cert:
      return {
        type: code === T.signature_algorithms ? 'signature_algorithms' : 'signature_algorithms_cert',
        schemes: readU16List(r, 2, 'signature_algorithms.supported_signature_algorithms', 2, 0xfffe),
      };
    case T.application_layer_protocol_negotiation: {
      const list = readVector(r, 2, 'alpn.protocol_name_list', 2);
      const protocols: string[] = [];
      while (!list.atEnd) protocols.push(latin1(readOpaque(list, 1, 'alpn.protocol_name', 1)));
      // RFC 7301 §3.1: the server's list MUST contain exactly one name.
      if (ctx !== 'client_hello' && protocols.length !== 1) {
        r.fail('alpn.protocol_name_list', `server selected ${protocols.length} protocols, not one`, 0);
      }
      return { type: 'alpn', protocols };
    }
    case T.supported_versions:
      if (ctx === 'client_hello') {
        return {
          type: 'supported_versions',
          versions: readU16List(r, 1, 'supported_versions.versions', 2, 254),
        };
      }
      return { type: 'supported_versions', selectedVersion: r.u16('supported_versions.selected_version') };
    case T.key_share: {
      if (ctx === 'hello_retry_request')
        return { type: 'key_share', selectedGroup: r.u16('key_share.selected_group') };
      if (ctx === 'server_hello') return { type: 'key_share', serverShare: readKeyShareEntry(r) };
      const list = readVector(r, 2, 'key_share.client_shares');
      const clientShares: KeyShareEntry[] = [];
      const seen = new Set<number>();
      while (!list.atEnd) {
        const at = list.offset;
        const e = readKeyShareEntry(list);
        // RFC 8446 §4.2.8: clients MUST NOT offer two KeyShareEntry values for one group.
        if (seen.has(e.group)) list.fail('key_share.group', `duplicate share for group ${e.group}`, at);
        seen.add(e.group);
        clientShares.push(e);
      }
      return { type: 'key_share', clientShares };
    }
    case T.psk_key_exchange_modes: {
      const v = readVector(r, 1, 'psk_key_exchange_modes.ke_modes', 1);
      return { type: 'psk_key_exchange_modes', modes: Array.from(v.rest('ke_modes')) };
    }
    case T.pre_shared_key: {
      if (ctx === 'server_hello') {
        return { type: 'pre_shared_key', selectedIdentity: r.u16('pre_shared_key.selected_identity') };
      }
      // OfferedPsks: identities<7..2^16-1>, binders<33..2^16-1> (RFC 8446 §4.2.11).
      const ids = readVector(r, 2, 'pre_shared_key.identities', 7);
      const identities: PskIdentity[] = [];
      while (!ids.atEnd) {
        const identity = readOpaque(ids, 2, 'pre_shared_key.identity', 1);
        identities.push({ identity, obfuscatedTicketAge: ids.u32('pre_shared_key.obfuscated_ticket_age') });
      }
      const at = r.offset;
      const bs = readVector(r, 2, 'pre_shared_key.binders', 33);
      const binders: Uint8Array[] = [];
      while (!bs.atEnd) binders.push(readOpaque(bs, 1, 'pre_shared_key.binder', 32));
      if (binders.length !== identities.length) {
        r.fail('pre_shared_key.binders', `${binders.length} binders for ${identities.length} identities`, at);
      }
      return { type: 'pre_shared_key', identities, binders };
    }
    case T.early_data:
      if (ctx === 'new_session_ticket') {
        return { type: 'early_data', maxEarlyDataSize: r.u32('early_data.max_early_data_size') };
      }
      return { type: 'early_data' };
    case T.cookie:
      return { type: 'cookie', cookie: readOpaque(r, 2, 'cookie.cookie', 1) };
    case T.record_size_limit: {
      const limit = r.u16('record_size_limit');
      // RFC 8449 §4: a value below 64 MUST be treated as an illegal_parameter.
      if (limit < 64) r.fail('record_size_limit', `limit ${limit} below 64`, 0);
      return { type: 'record_size_limit', limit };
    }
    case T.post_handshake_auth:
      // RFC 8446 §4.2.6: "The extension_data field of the post_handshake_auth extension is zero length."
      return { type: 'post_handshake_auth' };
    default:
      return r.fail('extension_type', `no structured form for ${code}`, 0);
  }
}

function readKeyShareEntry(r: ByteReader): KeyShareEntry {
  const group = r.u16('key_share.group');
  return { group, keyExchange: readOpaque(r, 2, 'key_share.key_exchange', 1) };
}

/**
 * Decode an extensions vector (with its 2-byte length) from `r`. Enforces the per-message
 * minimum length, no duplicate types (RFC 8446 §4.2) and pre_shared_key last in a
 * ClientHello (§4.2.11).
 */
export function readExtensions(r: ByteReader, ctx: ExtensionContext): Extension[] {
  const block = readVector(r, 2, 'extensions', MIN_BLOCK[ctx], MAX_BLOCK[ctx]);
  const out: Extension[] = [];
  const seen = new Set<number>();
  while (!block.atEnd) {
    const at = block.offset;
    const code = block.u16('extension_type');
    if (seen.has(code)) block.fail('extension_type', `duplicate extension ${code}`, at);
    seen.add(code);
    const body = readVector(block, 2, 'extension_data');
    if (ctx === 'client_hello' && seen.has(T.pre_shared_key) && code !== T.pre_shared_key) {
      block.fail('extension_type', 'pre_shared_key is not the last extension', at);
    }
    const ext: Extension = STRUCTURED[ctx].has(code)
      ? decodeBody(code, body, ctx)
      : { type: 'raw', code, data: body.rest('extension_data').slice() };
    body.end(`extension ${code}`);
    out.push(ext);
  }
  return out;
}

function encodeBody(w: ByteWriter, e: Extension): void {
  switch (e.type) {
    case 'server_name':
      if (e.hostName === undefined) return;
      writeVector(w, 2, 'server_name_list', (l) => {
        l.u8(0);
        writeOpaque(l, 2, fromLatin1(e.hostName!, 'host_name'), 'host_name');
      });
      return;
    case 'supported_groups':
      writeU16List(w, 2, e.groups, 'named_group_list');
      return;
    case 'signature_algorithms':
    case 'signature_algorithms_cert':
      writeU16List(w, 2, e.schemes, 'supported_signature_algorithms');
      return;
    case 'alpn':
      writeVector(w, 2, 'protocol_name_list', (l) => {
        for (const p of e.protocols) writeOpaque(l, 1, fromLatin1(p, 'protocol_name'), 'protocol_name');
      });
      return;
    case 'supported_versions':
      if ('versions' in e) writeU16List(w, 1, e.versions, 'versions');
      else w.u16(e.selectedVersion);
      return;
    case 'key_share':
      if ('selectedGroup' in e) w.u16(e.selectedGroup);
      else if ('serverShare' in e) writeKeyShareEntry(w, e.serverShare);
      else
        writeVector(w, 2, 'client_shares', (l) => {
          for (const s of e.clientShares) writeKeyShareEntry(l, s);
        });
      return;
    case 'psk_key_exchange_modes':
      writeOpaque(w, 1, Uint8Array.from(e.modes), 'ke_modes');
      return;
    case 'pre_shared_key':
      if ('selectedIdentity' in e) {
        w.u16(e.selectedIdentity);
        return;
      }
      writeVector(w, 2, 'identities', (l) => {
        for (const id of e.identities) {
          writeOpaque(l, 2, id.identity, 'identity');
          l.u32(id.obfuscatedTicketAge);
        }
      });
      writeBinders(w, e.binders);
      return;
    case 'early_data':
      if ('maxEarlyDataSize' in e) w.u32(e.maxEarlyDataSize);
      return;
    case 'cookie':
      writeOpaque(w, 2, e.cookie, 'cookie');
      return;
    case 'record_size_limit':
      w.u16(e.limit);
      return;
    case 'post_handshake_auth':
      return;
    case 'raw':
      w.bytes(e.data);
      return;
  }
}

function writeKeyShareEntry(w: ByteWriter, s: KeyShareEntry): void {
  w.u16(s.group);
  writeOpaque(w, 2, s.keyExchange, 'key_exchange');
}

export function writeBinders(w: ByteWriter, binders: readonly Uint8Array[]): void {
  writeVector(w, 2, 'binders', (l) => {
    for (const b of binders) writeOpaque(l, 1, b, 'binder');
  });
}

/** Length of the encoded binders list: what the ClientHello prefix for the binder hash leaves off (§4.2.11.2). */
export function bindersLength(binders: readonly Uint8Array[]): number {
  let n = 2;
  for (const b of binders) n += 1 + b.length;
  return n;
}

export function writeExtensions(w: ByteWriter, exts: readonly Extension[]): void {
  writeVector(w, 2, 'extensions', (block) => {
    for (const e of exts) {
      block.u16(extensionCode(e));
      writeVector(block, 2, 'extension_data', (b) => encodeBody(b, e));
    }
  });
}

export function encodeExtensions(exts: readonly Extension[]): Uint8Array {
  const w = new ByteWriter(256);
  writeExtensions(w, exts);
  return w.finish().slice();
}

/** Find an extension by its type tag (the first; decoders already reject duplicates). */
export function findExtension<K extends Extension['type']>(
  exts: readonly Extension[],
  type: K,
): Extract<Extension, { type: K }> | undefined {
  return exts.find((e) => e.type === type) as Extract<Extension, { type: K }> | undefined;
}
