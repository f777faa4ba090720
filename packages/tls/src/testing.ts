/**
 * fast-check arbitraries for every TLS codec, for our own property tests and for anyone
 * who wants to fuzz their TLS code with well-formed messages.
 */
import fc from 'fast-check';
import type { Alert } from './codec/alert.ts';
import { ContentType, ExtensionType } from './codec/common.ts';
import {
  type Extension,
  type ExtensionContext,
  encodeExtensions,
  extensionCode,
  type KeyShareEntry,
  type PskIdentity,
  STRUCTURED,
} from './codec/extensions.ts';
import {
  type Certificate,
  type CertificateRequest,
  type CertificateVerify,
  type ClientHello,
  type CompressedCertificate,
  type EncryptedExtensions,
  type EndOfEarlyData,
  type Finished,
  type HandshakeMessage,
  HELLO_RETRY_REQUEST_RANDOM,
  type HelloRetryRequest,
  type KeyUpdate,
  type NewSessionTicket,
  type ServerHello,
} from './codec/handshake.ts';
import {
  MAX_CIPHERTEXT,
  MAX_PLAINTEXT,
  type RecordHeader,
  type TLSCiphertext,
  type TLSInnerPlaintext,
  type TLSPlaintext,
} from './codec/record.ts';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });
/** Strings whose chars are all single bytes, as the latin1 fields of the codecs hold. */
const byteString = (minLength: number, maxLength: number) =>
  bytes(minLength, maxLength).map((b) => String.fromCharCode(...b));

const recordTypes = [
  ContentType.change_cipher_spec,
  ContentType.alert,
  ContentType.handshake,
  ContentType.application_data,
];
const legacyRecordVersion = fc.constantFrom(0x0301, 0x0303);

export const arbitraryRecordHeader: fc.Arbitrary<RecordHeader> = fc.record({
  type: fc.constantFrom(...recordTypes),
  legacyRecordVersion: fc.integer({ min: 0x0300, max: 0x03ff }),
  length: fc.integer({ min: 0, max: MAX_CIPHERTEXT }),
});

export const arbitraryTLSPlaintext: fc.Arbitrary<TLSPlaintext> = fc.oneof(
  fc.record({
    type: fc.constantFrom(ContentType.handshake, ContentType.alert),
    legacyRecordVersion,
    fragment: bytes(1, 300),
  }),
  fc.record({
    type: fc.constantFrom(ContentType.change_cipher_spec, ContentType.application_data),
    legacyRecordVersion,
    fragment: bytes(0, 300),
  }),
  // The 2^14 limit exactly.
  fc.record({
    type: fc.constant(ContentType.application_data),
    legacyRecordVersion,
    fragment: fc.constant(new Uint8Array(MAX_PLAINTEXT)),
  }),
);

export const arbitraryTLSCiphertext: fc.Arbitrary<TLSCiphertext> = fc.record({
  legacyRecordVersion: fc.constant(0x0303),
  encryptedRecord: fc.oneof(bytes(17, 300), fc.constant(new Uint8Array(MAX_CIPHERTEXT))),
});

export const arbitraryTLSInnerPlaintext: fc.Arbitrary<TLSInnerPlaintext> = fc.record({
  content: bytes(0, 300),
  type: fc.integer({ min: 1, max: 0xff }),
  zeros: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: MAX_PLAINTEXT - 300 })),
});

export const arbitraryAlert: fc.Arbitrary<Alert> = fc.record({ level: u8, description: u8 });

const keyShareEntry: fc.Arbitrary<KeyShareEntry> = fc.record({
  group: u16,
  keyExchange: bytes(1, 97),
});

const pskIdentity: fc.Arbitrary<PskIdentity> = fc.record({
  identity: bytes(1, 64),
  obfuscatedTicketAge: u32,
});

const offeredPsks: fc.Arbitrary<Extension> = fc
  .array(pskIdentity, { minLength: 1, maxLength: 3 })
  .chain((identities) =>
    fc.record({
      type: fc.constant('pre_shared_key' as const),
      identities: fc.constant(identities),
      binders: fc.array(bytes(32, 48), { minLength: identities.length, maxLength: identities.length }),
    }),
  );

const schemes = fc.array(u16, { minLength: 1, maxLength: 20 });

/** One extension in its structured form for `ctx`, or a raw one with a code left raw in `ctx`. */
export function arbitraryExtension(ctx: ExtensionContext): fc.Arbitrary<Extension> {
  const structured = STRUCTURED[ctx];
  const has = (code: number) => structured.has(code);
  const options: fc.Arbitrary<Extension>[] = [
    fc.record({
      type: fc.constant('raw' as const),
      code: u16.filter((c) => !has(c) && c !== ExtensionType.padding),
      data: bytes(0, 40),
    }),
  ];
  const T = ExtensionType;
  if (has(T.server_name)) {
    options.push(
      ctx === 'client_hello'
        ? fc.record({ type: fc.constant('server_name' as const), hostName: byteString(1, 40) })
        : fc.constant({ type: 'server_name' as const }),
    );
  }
  if (has(T.supported_groups)) {
    options.push(
      fc.record({
        type: fc.constant('supported_groups' as const),
        groups: fc.array(u16, { minLength: 1, maxLength: 10 }),
      }),
    );
  }
  if (has(T.signature_algorithms))
    options.push(fc.record({ type: fc.constant('signature_algorithms' as const), schemes }));
  if (has(T.signature_algorithms_cert)) {
    options.push(fc.record({ type: fc.constant('signature_algorithms_cert' as const), schemes }));
  }
  if (has(T.application_layer_protocol_negotiation)) {
    const n = ctx === 'client_hello' ? { minLength: 1, maxLength: 4 } : { minLength: 1, maxLength: 1 };
    options.push(
      fc.record({ type: fc.constant('alpn' as const), protocols: fc.array(byteString(1, 12), n) }),
    );
  }
  if (has(T.supported_versions)) {
    options.push(
      ctx === 'client_hello'
        ? fc.record({
            type: fc.constant('supported_versions' as const),
            versions: fc.array(u16, { minLength: 1, maxLength: 8 }),
          })
        : fc.record({ type: fc.constant('supported_versions' as const), selectedVersion: u16 }),
    );
  }
  if (has(T.key_share)) {
    if (ctx === 'client_hello') {
      options.push(
        fc.record({
          type: fc.constant('key_share' as const),
          clientShares: fc.uniqueArray(keyShareEntry, { maxLength: 3, selector: (e) => e.group }),
        }),
      );
    } else if (ctx === 'server_hello') {
      options.push(fc.record({ type: fc.constant('key_share' as const), serverShare: keyShareEntry }));
    } else {
      options.push(fc.record({ type: fc.constant('key_share' as const), selectedGroup: u16 }));
    }
  }
  if (has(T.psk_key_exchange_modes)) {
    options.push(
      fc.record({
        type: fc.constant('psk_key_exchange_modes' as const),
        modes: fc.array(u8, { minLength: 1, maxLength: 4 }),
      }),
    );
  }
  if (has(T.pre_shared_key)) {
    options.push(
      ctx === 'client_hello'
        ? offeredPsks
        : fc.record({ type: fc.constant('pre_shared_key' as const), selectedIdentity: u16 }),
    );
  }
  if (has(T.early_data)) {
    options.push(
      ctx === 'new_session_ticket'
        ? fc.record({ type: fc.constant('early_data' as const), maxEarlyDataSize: u32 })
        : fc.constant({ type: 'early_data' as const }),
    );
  }
  if (has(T.cookie)) options.push(fc.record({ type: fc.constant('cookie' as const), cookie: bytes(1, 64) }));
  // RFC 8446 §4.2.6: post_handshake_auth is empty.
  if (has(T.post_handshake_auth)) options.push(fc.constant({ type: 'post_handshake_auth' as const }));
  if (has(T.record_size_limit)) {
    options.push(
      fc.record({
        type: fc.constant('record_size_limit' as const),
        limit: fc.integer({ min: 64, max: 0xffff }),
      }),
    );
  }
  return fc.oneof(...options);
}

const MIN_BLOCK: Partial<Record<ExtensionContext, number>> = {
  client_hello: 8,
  server_hello: 6,
  hello_retry_request: 6,
  certificate_request: 2,
};

/**
 * A valid extension block for `ctx`: unique types, pre_shared_key last in a ClientHello
 * (RFC 8446 §4.2.11), and a padding extension added when the block would be shorter than
 * the message's minimum.
 */
export function arbitraryExtensions(ctx: ExtensionContext, maxLength = 6): fc.Arbitrary<Extension[]> {
  return fc.uniqueArray(arbitraryExtension(ctx), { maxLength, selector: extensionCode }).map((list) => {
    const psk = list.findIndex((e) => e.type === 'pre_shared_key');
    if (ctx === 'client_hello' && psk >= 0) list.push(...list.splice(psk, 1));
    const min = MIN_BLOCK[ctx] ?? 0;
    const have = encodeExtensions(list).length - 2;
    if (have < min) {
      list.unshift({
        type: 'raw',
        code: ExtensionType.padding,
        data: new Uint8Array(Math.max(0, min - have - 4)),
      });
    }
    return list;
  });
}

const cipherSuites = fc.array(u16, { minLength: 1, maxLength: 10 });

export const arbitraryClientHello: fc.Arbitrary<ClientHello> = fc.record({
  msgType: fc.constant('client_hello' as const),
  legacyVersion: fc.constantFrom(0x0303, 0x0301),
  random: bytes(32, 32),
  legacySessionId: bytes(0, 32),
  cipherSuites,
  legacyCompressionMethods: fc.constantFrom(Uint8Array.of(0), Uint8Array.of(1, 0)),
  extensions: arbitraryExtensions('client_hello', 8),
});

export const arbitraryServerHello: fc.Arbitrary<ServerHello> = fc.record({
  msgType: fc.constant('server_hello' as const),
  legacyVersion: fc.constant(0x0303),
  random: bytes(32, 32).filter((r) => r.some((b, i) => b !== HELLO_RETRY_REQUEST_RANDOM[i])),
  legacySessionIdEcho: bytes(0, 32),
  cipherSuite: u16,
  legacyCompressionMethod: fc.constant(0),
  extensions: arbitraryExtensions('server_hello'),
});

export const arbitraryHelloRetryRequest: fc.Arbitrary<HelloRetryRequest> = fc.record({
  msgType: fc.constant('hello_retry_request' as const),
  legacyVersion: fc.constant(0x0303),
  legacySessionIdEcho: bytes(0, 32),
  cipherSuite: u16,
  legacyCompressionMethod: fc.constant(0),
  extensions: arbitraryExtensions('hello_retry_request'),
});

export const arbitraryEncryptedExtensions: fc.Arbitrary<EncryptedExtensions> = fc.record({
  msgType: fc.constant('encrypted_extensions' as const),
  extensions: arbitraryExtensions('encrypted_extensions'),
});

export const arbitraryCertificateRequest: fc.Arbitrary<CertificateRequest> = fc.record({
  msgType: fc.constant('certificate_request' as const),
  certificateRequestContext: bytes(0, 32),
  extensions: arbitraryExtensions('certificate_request'),
});

export const arbitraryCertificate: fc.Arbitrary<Certificate> = fc.record({
  msgType: fc.constant('certificate' as const),
  certificateRequestContext: bytes(0, 32),
  certificateList: fc.array(
    fc.record({ certData: bytes(1, 200), extensions: arbitraryExtensions('certificate', 2) }),
    { maxLength: 3 },
  ),
});

export const arbitraryCertificateVerify: fc.Arbitrary<CertificateVerify> = fc.record({
  msgType: fc.constant('certificate_verify' as const),
  algorithm: u16,
  signature: bytes(0, 300),
});

export const arbitraryFinished: fc.Arbitrary<Finished> = fc.record({
  msgType: fc.constant('finished' as const),
  verifyData: fc.oneof(bytes(32, 32), bytes(48, 48)),
});

export const arbitraryNewSessionTicket: fc.Arbitrary<NewSessionTicket> = fc.record({
  msgType: fc.constant('new_session_ticket' as const),
  ticketLifetime: u32,
  ticketAgeAdd: u32,
  ticketNonce: bytes(0, 16),
  ticket: bytes(1, 200),
  extensions: arbitraryExtensions('new_session_ticket', 2),
});

export const arbitraryKeyUpdate: fc.Arbitrary<KeyUpdate> = fc.record({
  msgType: fc.constant('key_update' as const),
  requestUpdate: fc.constantFrom(0, 1),
});

export const arbitraryEndOfEarlyData: fc.Arbitrary<EndOfEarlyData> = fc.constant({
  msgType: 'end_of_early_data' as const,
});

export const arbitraryCompressedCertificate: fc.Arbitrary<CompressedCertificate> = fc.record({
  msgType: fc.constant('compressed_certificate' as const),
  algorithm: fc.constantFrom(1, 2, 3),
  uncompressedLength: fc.integer({ min: 0, max: 0xffffff }),
  compressedCertificateMessage: bytes(1, 200),
});

export const arbitraryHandshakeMessage: fc.Arbitrary<HandshakeMessage> = fc.oneof(
  arbitraryClientHello,
  arbitraryServerHello,
  arbitraryHelloRetryRequest,
  arbitraryEncryptedExtensions,
  arbitraryCertificateRequest,
  arbitraryCertificate,
  arbitraryCertificateVerify,
  arbitraryFinished,
  arbitraryNewSessionTicket,
  arbitraryKeyUpdate,
  arbitraryEndOfEarlyData,
  arbitraryCompressedCertificate,
);
