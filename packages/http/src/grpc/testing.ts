/** fast-check arbitraries for gRPC's wire formats. */
import fc from 'fast-check';
import type { GrpcMessage } from './framing.ts';
import { GRPC_TIMEOUT_MAX_VALUE, type GrpcTimeout, type GrpcTimeoutUnit } from './headers.ts';

/** A length-prefixed message; short by default. */
export const arbitraryGrpcMessageOf = (maxLength = 256): fc.Arbitrary<GrpcMessage> =>
  fc.record({ compressed: fc.boolean(), data: fc.uint8Array({ maxLength }) });
export const arbitraryGrpcMessage: fc.Arbitrary<GrpcMessage> = arbitraryGrpcMessageOf();

export const arbitraryGrpcTimeout: fc.Arbitrary<GrpcTimeout> = fc.record({
  value: fc.integer({ min: 0, max: GRPC_TIMEOUT_MAX_VALUE }),
  unit: fc.constantFrom<GrpcTimeoutUnit>('H', 'M', 'S', 'm', 'u', 'n'),
});

/** Text of any Unicode (grpc-message carries UTF-8, percent-encoded). */
export const arbitraryGrpcStatusMessage: fc.Arbitrary<string> = fc.string({ unit: 'binary', maxLength: 64 });
