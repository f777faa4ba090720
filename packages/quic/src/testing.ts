/**
 * fast-check arbitraries for every QUIC codec, for our property tests and for anyone who
 * wants to fuzz their QUIC code with well-formed values (`@stepwire/quic/testing`).
 */
import fc from 'fast-check';
import { type AckFrame, ackFrameFromRanges, type Frame, type PacketRange } from './frames/frame.ts';
import { type H3Frame, H3FrameType, type H3Setting } from './h3/frames.ts';
import type {
  InitialHeader,
  PacketHeader,
  PlainPacket,
  RetryPacket,
  ShortHeader,
  VersionNegotiationPacket,
} from './packet/header.ts';
import type { PacketNumberLength } from './packet/number.ts';
import type { Field } from './qpack/decoder.ts';
import type {
  DecoderInstruction,
  EncodedFieldSection,
  EncoderInstruction,
  FieldLine,
  Literal,
} from './qpack/instructions.ts';
import type { TransportParameters } from './transport-parameters.ts';

const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });

/** Varint values biased to the boundaries of each encoded length (RFC 9000 §16). */
export const arbitraryVarint: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 63 }),
  fc.integer({ min: 64, max: 16383 }),
  fc.integer({ min: 16384, max: 2 ** 30 - 1 }),
  fc.integer({ min: 2 ** 30, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, Number.MAX_SAFE_INTEGER),
);

export const arbitraryConnectionId = (min = 0, max = 20): fc.Arbitrary<Uint8Array> => bytes(min, max);

const pnFields = fc.constantFrom<PacketNumberLength>(1, 2, 3, 4).chain((packetNumberLength) =>
  fc.record({
    packetNumberLength: fc.constant(packetNumberLength),
    truncatedPacketNumber: fc.integer({ min: 0, max: 2 ** (8 * packetNumberLength) - 1 }),
  }),
);

const longCommon = fc.record({
  version: fc.constant(1),
  dcid: arbitraryConnectionId(),
  scid: arbitraryConnectionId(),
  reservedBits: fc.integer({ min: 0, max: 3 }),
});

export const arbitraryInitialHeader: fc.Arbitrary<InitialHeader> = fc
  .tuple(longCommon, pnFields, bytes(0, 64))
  .map(([c, pn, token]) => ({ type: 'Initial', ...c, ...pn, token }));

export const arbitraryShortHeader = (dcidLength = 8): fc.Arbitrary<ShortHeader> =>
  fc
    .tuple(
      bytes(dcidLength, dcidLength),
      fc.boolean(),
      fc.integer({ min: 0, max: 3 }),
      fc.boolean(),
      pnFields,
    )
    .map(([dcid, spinBit, reservedBits, keyPhase, pn]) => ({
      type: '1-RTT',
      dcid,
      spinBit,
      reservedBits,
      keyPhase,
      ...pn,
    }));

export const arbitraryPacketHeader = (shortDcidLength = 8): fc.Arbitrary<PacketHeader> =>
  fc.oneof(
    arbitraryInitialHeader,
    fc.tuple(longCommon, pnFields).map(([c, pn]): PacketHeader => ({ type: '0-RTT', ...c, ...pn })),
    fc.tuple(longCommon, pnFields).map(([c, pn]): PacketHeader => ({ type: 'Handshake', ...c, ...pn })),
    arbitraryShortHeader(shortDcidLength),
  );

export const arbitraryPlainPacket = (shortDcidLength = 8): fc.Arbitrary<PlainPacket> =>
  fc.record({ header: arbitraryPacketHeader(shortDcidLength), payload: bytes(0, 256) });

export const arbitraryRetryPacket: fc.Arbitrary<RetryPacket> = fc.record({
  type: fc.constant('Retry' as const),
  version: fc.constant(1),
  unusedBits: fc.integer({ min: 0, max: 15 }),
  dcid: arbitraryConnectionId(),
  scid: arbitraryConnectionId(),
  retryToken: bytes(0, 64),
  retryIntegrityTag: bytes(16, 16),
});

export const arbitraryVersionNegotiationPacket: fc.Arbitrary<VersionNegotiationPacket> = fc.record({
  type: fc.constant('VersionNegotiation' as const),
  unusedBits: fc.integer({ min: 0, max: 0x7f }),
  dcid: arbitraryConnectionId(0, 255),
  scid: arbitraryConnectionId(0, 255),
  supportedVersions: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 8 }),
});

/** Disjoint, non-adjacent packet ranges, largest first, all at or above 0. */
export const arbitraryPacketRanges = (maxRanges = 16): fc.Arbitrary<PacketRange[]> =>
  fc
    .tuple(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), {
        minLength: 1,
        maxLength: maxRanges,
      }),
    )
    .map(([base, steps]) => {
      // Build from the smallest upward: each range is [start, start+len], the next starts at least 2 above.
      const ranges: PacketRange[] = [];
      let at = base;
      for (const [gap, len] of steps) {
        const smallest = at;
        const largest = smallest + len;
        ranges.push({ smallest, largest });
        at = largest + gap + 2;
      }
      return ranges.reverse();
    });

export const arbitraryAckFrame: fc.Arbitrary<AckFrame> = fc
  .tuple(
    arbitraryPacketRanges(),
    fc.integer({ min: 0, max: 2 ** 32 }),
    fc.option(
      fc.record({
        ect0: fc.integer({ min: 0, max: 2 ** 40 }),
        ect1: fc.integer({ min: 0, max: 2 ** 40 }),
        ecnCe: fc.integer({ min: 0, max: 2 ** 40 }),
      }),
      { nil: undefined },
    ),
  )
  .map(([ranges, delay, ecn]) => ackFrameFromRanges(ranges, delay, ecn));

const streamId = fc.integer({ min: 0, max: 2 ** 50 });
const offset = fc.integer({ min: 0, max: 2 ** 50 });
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const data = bytes(0, 64);
const token16 = bytes(16, 16);
const path8 = bytes(8, 8);

/** One frame; `last` allows the frames that run to the end of a packet (no Length). */
export const arbitraryFrameOf = (last: boolean): fc.Arbitrary<Frame> =>
  fc.oneof(
    fc.record({ type: fc.constant('PADDING' as const), length: fc.integer({ min: 1, max: 40 }) }),
    fc.constant<Frame>({ type: 'PING' }),
    arbitraryAckFrame,
    fc.record({
      type: fc.constant('RESET_STREAM' as const),
      streamId,
      applicationProtocolErrorCode: arbitraryVarint,
      finalSize: offset,
    }),
    fc.record({
      type: fc.constant('STOP_SENDING' as const),
      streamId,
      applicationProtocolErrorCode: arbitraryVarint,
    }),
    fc.record({ type: fc.constant('CRYPTO' as const), offset, data }),
    fc.record({ type: fc.constant('NEW_TOKEN' as const), token: bytes(1, 64) }),
    fc
      .record({
        streamId,
        offset,
        hasOffset: fc.boolean(),
        hasLength: last ? fc.boolean() : fc.constant(true),
        fin: fc.boolean(),
        data,
      })
      .map((f): Frame => ({ type: 'STREAM', ...f, offset: f.hasOffset ? f.offset : 0 })),
    fc.record({ type: fc.constant('MAX_DATA' as const), maximumData: arbitraryVarint }),
    fc.record({
      type: fc.constant('MAX_STREAM_DATA' as const),
      streamId,
      maximumStreamData: arbitraryVarint,
    }),
    fc.record({
      type: fc.constant('MAX_STREAMS' as const),
      bidirectional: fc.boolean(),
      maximumStreams: count,
    }),
    fc.record({ type: fc.constant('DATA_BLOCKED' as const), maximumData: arbitraryVarint }),
    fc.record({
      type: fc.constant('STREAM_DATA_BLOCKED' as const),
      streamId,
      maximumStreamData: arbitraryVarint,
    }),
    fc.record({
      type: fc.constant('STREAMS_BLOCKED' as const),
      bidirectional: fc.boolean(),
      maximumStreams: count,
    }),
    fc
      .tuple(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        bytes(1, 20),
        token16,
      )
      .map(
        ([a, b, connectionId, statelessResetToken]): Frame => ({
          type: 'NEW_CONNECTION_ID',
          sequenceNumber: Math.max(a, b),
          retirePriorTo: Math.min(a, b),
          connectionId,
          statelessResetToken,
        }),
      ),
    fc.record({ type: fc.constant('RETIRE_CONNECTION_ID' as const), sequenceNumber: arbitraryVarint }),
    fc.record({ type: fc.constant('PATH_CHALLENGE' as const), data: path8 }),
    fc.record({ type: fc.constant('PATH_RESPONSE' as const), data: path8 }),
    fc.record({
      type: fc.constant('CONNECTION_CLOSE' as const),
      errorCode: arbitraryVarint,
      frameType: arbitraryVarint,
      reasonPhrase: data,
    }),
    fc.record({
      type: fc.constant('CONNECTION_CLOSE_APPLICATION' as const),
      errorCode: arbitraryVarint,
      reasonPhrase: data,
    }),
    fc.constant<Frame>({ type: 'HANDSHAKE_DONE' }),
    fc.record({
      type: fc.constant('DATAGRAM' as const),
      hasLength: last ? fc.boolean() : fc.constant(true),
      data,
    }),
  );

export const arbitraryFrame: fc.Arbitrary<Frame> = arbitraryFrameOf(true);

/** A packet payload: at least one frame, frames without Length only last, no two PADDING runs adjacent. */
export const arbitraryFrames: fc.Arbitrary<Frame[]> = fc
  .tuple(fc.array(arbitraryFrameOf(false), { maxLength: 8 }), arbitraryFrameOf(true))
  .map(([init, last]) => {
    const all = [...init, last];
    return all.filter((f, i) => !(f.type === 'PADDING' && all[i + 1]?.type === 'PADDING'));
  });

const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

export const arbitraryTransportParameters: fc.Arbitrary<TransportParameters> = fc
  .record(
    {
      original_destination_connection_id: optional(arbitraryConnectionId()),
      max_idle_timeout: optional(arbitraryVarint),
      stateless_reset_token: optional(token16),
      max_udp_payload_size: optional(fc.integer({ min: 1200, max: 65527 })),
      initial_max_data: optional(arbitraryVarint),
      initial_max_stream_data_bidi_local: optional(arbitraryVarint),
      initial_max_stream_data_bidi_remote: optional(arbitraryVarint),
      initial_max_stream_data_uni: optional(arbitraryVarint),
      initial_max_streams_bidi: optional(count),
      initial_max_streams_uni: optional(count),
      ack_delay_exponent: optional(fc.integer({ min: 0, max: 20 })),
      max_ack_delay: optional(fc.integer({ min: 0, max: 2 ** 14 - 1 })),
      disable_active_migration: optional(fc.constant(true)),
      grease_quic_bit: optional(fc.constant(true)),
      version_information: optional(
        fc.record({
          chosenVersion: fc.integer({ min: 1, max: 0xffffffff }),
          availableVersions: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 4 }),
        }),
      ),
      preferred_address: optional(
        fc.record({
          ipv4Address: bytes(4, 4),
          ipv4Port: fc.integer({ min: 0, max: 0xffff }),
          ipv6Address: bytes(16, 16),
          ipv6Port: fc.integer({ min: 0, max: 0xffff }),
          connectionId: bytes(1, 20),
          statelessResetToken: token16,
        }),
      ),
      active_connection_id_limit: optional(fc.integer({ min: 2, max: 2 ** 40 })),
      initial_source_connection_id: optional(arbitraryConnectionId()),
      retry_source_connection_id: optional(arbitraryConnectionId()),
      max_datagram_frame_size: optional(arbitraryVarint),
      unknown: optional(
        fc.uniqueArray(
          fc.record({
            // Grease IDs (RFC 9000 §18.1: 31*N+27) and other IDs nobody defined.
            id: fc.oneof(
              fc.integer({ min: 0, max: 2 ** 20 }).map((n) => 31 * n + 27),
              fc.integer({ min: 0x40, max: 0x3fff }),
            ),
            value: bytes(0, 16),
          }),
          { selector: (u) => u.id, minLength: 1, maxLength: 4 },
        ),
      ),
    },
    { requiredKeys: [] },
  )
  .map((p) => {
    // Drop keys whose value is undefined, and unknown IDs that collide with known ones.
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v;
    const known = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x11, 0x20, 0x2ab2]);
    if (p.unknown) {
      const unknown = p.unknown.filter((u) => !known.has(u.id));
      if (unknown.length > 0) out.unknown = unknown;
      else delete out.unknown;
    }
    return out as TransportParameters;
  });

// ---- QPACK (RFC 9204) ----

const latin1Text = (max: number) =>
  fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b).toString('latin1'));
const qint = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 40 }));

export const arbitraryQpackLiteral: fc.Arbitrary<Literal> = fc.record({
  text: latin1Text(40),
  huffman: fc.boolean(),
});

export const arbitraryEncoderInstruction: fc.Arbitrary<EncoderInstruction> = fc.oneof(
  fc.record({ type: fc.constant('SetDynamicTableCapacity' as const), capacity: qint }),
  fc.record({
    type: fc.constant('InsertWithNameReference' as const),
    isStatic: fc.boolean(),
    nameIndex: qint,
    value: arbitraryQpackLiteral,
  }),
  fc.record({
    type: fc.constant('InsertWithLiteralName' as const),
    name: arbitraryQpackLiteral,
    value: arbitraryQpackLiteral,
  }),
  fc.record({ type: fc.constant('Duplicate' as const), index: qint }),
);

export const arbitraryDecoderInstruction: fc.Arbitrary<DecoderInstruction> = fc.oneof(
  fc.record({ type: fc.constant('SectionAcknowledgment' as const), streamId: qint }),
  fc.record({ type: fc.constant('StreamCancellation' as const), streamId: qint }),
  fc.record({ type: fc.constant('InsertCountIncrement' as const), increment: qint }),
);

export const arbitraryFieldLine: fc.Arbitrary<FieldLine> = fc.oneof(
  fc.record({ type: fc.constant('Indexed' as const), isStatic: fc.boolean(), index: qint }),
  fc.record({ type: fc.constant('IndexedPostBase' as const), index: qint }),
  fc.record({
    type: fc.constant('LiteralWithNameReference' as const),
    neverIndexed: fc.boolean(),
    isStatic: fc.boolean(),
    nameIndex: qint,
    value: arbitraryQpackLiteral,
  }),
  fc.record({
    type: fc.constant('LiteralWithPostBaseNameReference' as const),
    neverIndexed: fc.boolean(),
    nameIndex: qint,
    value: arbitraryQpackLiteral,
  }),
  fc.record({
    type: fc.constant('LiteralWithLiteralName' as const),
    neverIndexed: fc.boolean(),
    name: arbitraryQpackLiteral,
    value: arbitraryQpackLiteral,
  }),
);

export const arbitraryEncodedFieldSection: fc.Arbitrary<EncodedFieldSection> = fc.record({
  prefix: fc.record({ encodedInsertCount: qint, sign: fc.boolean(), deltaBase: qint }),
  lines: fc.array(arbitraryFieldLine, { maxLength: 8 }),
});

/** Header lists drawn from a small vocabulary, so the dynamic table sees repeats. */
export const arbitraryFieldList: fc.Arbitrary<Field[]> = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        ':path',
        ':authority',
        'user-agent',
        'x-trace',
        'custom-key',
        'authorization',
        'cookie',
      ),
      latin1Text(12),
    ),
    fc.oneof(fc.constantFrom('/', '/index.html', 'www.example.com', 'a', 'b', 'token'), latin1Text(30)),
  ),
  { maxLength: 12 },
);

// ---- HTTP/3 (RFC 9114) ----

const h3Payload = (max: number) => fc.uint8Array({ maxLength: max });
const knownH3Types = new Set<number>(Object.values(H3FrameType));

/** Frame types HTTP/3 does not define: reserved (grease, §7.2.8), HTTP/2's, and extensions. */
export const arbitraryUnknownH3FrameType: fc.Arbitrary<number> = fc
  .oneof(
    fc.integer({ min: 0, max: 2 ** 20 }).map((n) => 0x1f * n + 0x21),
    fc.constantFrom(0x02, 0x06, 0x08, 0x09),
    arbitraryVarint,
  )
  .filter((t) => !knownH3Types.has(t));

export const arbitraryH3Setting: fc.Arbitrary<H3Setting> = fc.record({
  id: arbitraryVarint,
  value: arbitraryVarint,
});

export const arbitraryH3Frame: fc.Arbitrary<H3Frame> = fc.oneof(
  fc.record({ type: fc.constant('DATA' as const), data: h3Payload(64) }),
  fc.record({ type: fc.constant('HEADERS' as const), fieldSection: h3Payload(64) }),
  fc.record({ type: fc.constant('CANCEL_PUSH' as const), pushId: arbitraryVarint }),
  fc.record({
    type: fc.constant('SETTINGS' as const),
    settings: fc.array(arbitraryH3Setting, { maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant('PUSH_PROMISE' as const),
    pushId: arbitraryVarint,
    fieldSection: h3Payload(64),
  }),
  fc.record({ type: fc.constant('GOAWAY' as const), id: arbitraryVarint }),
  fc.record({ type: fc.constant('MAX_PUSH_ID' as const), pushId: arbitraryVarint }),
  fc.record({
    type: fc.constant('unknown' as const),
    frameType: arbitraryUnknownH3FrameType,
    payload: h3Payload(32),
  }),
);
