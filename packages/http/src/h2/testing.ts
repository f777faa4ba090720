/** fast-check arbitraries for HTTP/2 frames (RFC 9113 §6, RFC 9218 §7.1). */
import fc from 'fast-check';
import {
  FrameType,
  type Http2Frame,
  MAX_MAX_FRAME_SIZE,
  MIN_MAX_FRAME_SIZE,
  type PrioritySpec,
  type Setting,
  SettingId,
} from './frames.ts';

const streamId = fc.integer({ min: 1, max: 0x7fffffff });
const u31 = fc.integer({ min: 0, max: 0x7fffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max = 64) => fc.uint8Array({ maxLength: max });
const padding = fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined });
const withPadding = <T extends Http2Frame & { padding?: number }>(
  f: T,
  p: number | undefined,
): Http2Frame => {
  if (p !== undefined) f.padding = p;
  return f;
};

export const arbitraryPrioritySpec: fc.Arbitrary<PrioritySpec> = fc.record({
  exclusive: fc.boolean(),
  streamDependency: u31,
  weight: fc.integer({ min: 0, max: 255 }),
});

/** A setting with a value valid for its identifier (RFC 9113 §6.5.2, RFC 8441, RFC 9218). */
export const arbitrarySetting: fc.Arbitrary<Setting> = fc.oneof(
  fc.tuple(fc.constant(SettingId.HEADER_TABLE_SIZE), u32),
  fc.tuple(
    fc.constantFrom(
      SettingId.ENABLE_PUSH,
      SettingId.ENABLE_CONNECT_PROTOCOL,
      SettingId.NO_RFC7540_PRIORITIES,
    ),
    fc.integer({ min: 0, max: 1 }),
  ),
  fc.tuple(fc.constant(SettingId.MAX_CONCURRENT_STREAMS), u32),
  fc.tuple(fc.constant(SettingId.INITIAL_WINDOW_SIZE), u31),
  fc.tuple(
    fc.constant(SettingId.MAX_FRAME_SIZE),
    fc.integer({ min: MIN_MAX_FRAME_SIZE, max: MAX_MAX_FRAME_SIZE }),
  ),
  fc.tuple(fc.constant(SettingId.MAX_HEADER_LIST_SIZE), u32),
  fc.tuple(fc.integer({ min: 0x0a, max: 0xffff }), u32),
);

const known = new Set<number>(Object.values(FrameType));

export const arbitraryHttp2Frame: fc.Arbitrary<Http2Frame> = fc.oneof(
  fc
    .tuple(streamId, fc.boolean(), bytes(), padding)
    .map(([streamId, endStream, data, p]) =>
      withPadding<Http2Frame & { type: 'DATA' }>({ type: 'DATA', streamId, endStream, data }, p),
    ),
  fc
    .tuple(
      streamId,
      fc.boolean(),
      fc.boolean(),
      fc.option(arbitraryPrioritySpec, { nil: undefined }),
      bytes(),
      padding,
    )
    .map(([streamId, endStream, endHeaders, priority, headerBlockFragment, p]) => {
      const f: Http2Frame & { type: 'HEADERS' } = {
        type: 'HEADERS',
        streamId,
        endStream,
        endHeaders,
        headerBlockFragment,
      };
      if (priority) f.priority = priority;
      return withPadding(f, p);
    }),
  fc
    .tuple(streamId, arbitraryPrioritySpec)
    .map(([streamId, priority]) => ({ type: 'PRIORITY' as const, streamId, priority })),
  fc
    .tuple(streamId, u32)
    .map(([streamId, errorCode]) => ({ type: 'RST_STREAM' as const, streamId, errorCode })),
  fc.oneof(
    fc
      .array(arbitrarySetting, { maxLength: 8 })
      .map((settings) => ({ type: 'SETTINGS' as const, ack: false, settings })),
    fc.constant({ type: 'SETTINGS' as const, ack: true, settings: [] as Setting[] }),
  ),
  fc
    .tuple(streamId, fc.boolean(), u31, bytes(), padding)
    .map(([streamId, endHeaders, promisedStreamId, headerBlockFragment, p]) =>
      withPadding(
        { type: 'PUSH_PROMISE' as const, streamId, endHeaders, promisedStreamId, headerBlockFragment },
        p,
      ),
    ),
  fc
    .tuple(fc.boolean(), fc.uint8Array({ minLength: 8, maxLength: 8 }))
    .map(([ack, opaqueData]) => ({ type: 'PING' as const, ack, opaqueData })),
  fc.tuple(u31, u32, bytes(32)).map(([lastStreamId, errorCode, debugData]) => ({
    type: 'GOAWAY' as const,
    lastStreamId,
    errorCode,
    debugData,
  })),
  fc
    .tuple(fc.integer({ min: 0, max: 0x7fffffff }), fc.integer({ min: 1, max: 0x7fffffff }))
    .map(([streamId, windowSizeIncrement]) => ({
      type: 'WINDOW_UPDATE' as const,
      streamId,
      windowSizeIncrement,
    })),
  fc.tuple(streamId, fc.boolean(), bytes()).map(([streamId, endHeaders, headerBlockFragment]) => ({
    type: 'CONTINUATION' as const,
    streamId,
    endHeaders,
    headerBlockFragment,
  })),
  fc
    .tuple(streamId, fc.string({ unit: fc.constantFrom(...'u=0123456789, i'.split('')), maxLength: 12 }))
    .map(([prioritizedStreamId, priorityFieldValue]) => ({
      type: 'PRIORITY_UPDATE' as const,
      prioritizedStreamId,
      priorityFieldValue,
    })),
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }).filter((t) => !known.has(t)),
      fc.integer({ min: 0, max: 255 }),
      u31,
      bytes(),
    )
    .map(([frameType, flags, streamId, payload]) => ({
      type: 'UNKNOWN' as const,
      frameType,
      flags,
      streamId,
      payload,
    })),
);
