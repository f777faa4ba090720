import fc from 'fast-check';
import type { WebSocketFrame } from './frame.ts';

/** A 4-byte masking key (RFC 6455 §5.3). */
export const arbitraryMaskingKey: fc.Arbitrary<Uint8Array> = fc.uint8Array({ minLength: 4, maxLength: 4 });

/**
 * Any frame the codec can carry: any opcode and RSV bits, masked or not, payload lengths
 * around the 7-bit, 16-bit and 64-bit length forms (RFC 6455 §5.2). Not every such frame is
 * legal on a connection (reserved opcodes, long control frames): that is the point, a
 * connection test feeds them to see them refused.
 */
export const arbitraryWebSocketFrameOf = (maxPayload = 300): fc.Arbitrary<WebSocketFrame> =>
  fc.record({
    fin: fc.boolean(),
    rsv1: fc.boolean(),
    rsv2: fc.boolean(),
    rsv3: fc.boolean(),
    opcode: fc.integer({ min: 0, max: 15 }),
    maskingKey: fc.option(arbitraryMaskingKey, { nil: undefined }),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: Math.min(maxPayload, 130) }),
      fc.uint8Array({ minLength: Math.min(maxPayload, 126), maxLength: maxPayload }),
    ),
  });

export const arbitraryWebSocketFrame: fc.Arbitrary<WebSocketFrame> = arbitraryWebSocketFrameOf();

/** A data message as the application sees it. */
export const arbitraryWebSocketMessage: fc.Arbitrary<{ binary: boolean; data: Uint8Array }> = fc.oneof(
  fc
    .string({ unit: 'grapheme', maxLength: 200 })
    .map((s) => ({ binary: false, data: new TextEncoder().encode(s) })),
  fc.uint8Array({ maxLength: 400 }).map((data) => ({ binary: true, data })),
);

/** Ways to split a byte string into chunks (TCP segment boundaries, fragment sizes). */
export const arbitrarySplits = (max = 8): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: max });

export function splitBytes(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  for (const s of sizes) {
    if (o >= bytes.length) break;
    out.push(bytes.subarray(o, o + s));
    o += s;
  }
  if (o < bytes.length) out.push(bytes.subarray(o));
  return out;
}
