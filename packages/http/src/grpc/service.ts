/**
 * Method and service definitions: a path (`/package.Service/Method`, PROTOCOL-HTTP2.md
 * "Path"), a kind, and how messages turn into bytes. Definitions come from a
 * @bufbuild/protobuf service descriptor (`grpcServiceFromDescriptor`) or are written by
 * hand (`grpcRawMethod`, bytes in and out).
 */
import {
  create,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';

export type GrpcMethodKind = 'unary' | 'server_streaming' | 'client_streaming' | 'bidi_streaming';

export interface GrpcMethod<I = unknown, O = unknown, K extends GrpcMethodKind = GrpcMethodKind> {
  /** ":path" of the call, "/" Service-Name "/" method name. */
  readonly path: string;
  readonly kind: K;
  serializeRequest(m: I): Uint8Array;
  deserializeRequest(b: Uint8Array): I;
  serializeResponse(m: O): Uint8Array;
  deserializeResponse(b: Uint8Array): O;
}

/** Any method (for collections of methods with different message types). */
// biome-ignore lint/suspicious/noExplicitAny: a definition's methods have differing message types.
export type AnyGrpcMethod = GrpcMethod<any, any, GrpcMethodKind>;
export type GrpcServiceDefinition = Record<string, AnyGrpcMethod>;

const identity = (b: Uint8Array): Uint8Array => b;

/** A method whose messages are raw bytes (the application encodes them itself). */
export function grpcRawMethod<K extends GrpcMethodKind>(
  path: string,
  kind: K,
): GrpcMethod<Uint8Array, Uint8Array, K> {
  return {
    path,
    kind,
    serializeRequest: identity,
    deserializeRequest: identity,
    serializeResponse: identity,
    deserializeResponse: identity,
  };
}

/** Method kinds of @bufbuild/protobuf's descriptors, which already name them as gRPC does. */
function kindOf(m: DescMethod): GrpcMethodKind {
  return m.methodKind;
}

/**
 * Definitions for every method of a @bufbuild/protobuf service descriptor, keyed by the
 * method's name as the .proto file spells it ("Unary", "ServerStream", ...). Messages are
 * the runtime's message shapes, serialized with toBinary/fromBinary.
 */
export function grpcServiceFromDescriptor(service: DescService): GrpcServiceDefinition {
  const out: GrpcServiceDefinition = {};
  for (const m of service.methods) {
    const input = m.input;
    const output = m.output;
    out[m.name] = {
      path: `/${service.typeName}/${m.name}`,
      kind: kindOf(m),
      serializeRequest: (msg: MessageShape<typeof input>) => toBinary(input, create(input, msg)),
      deserializeRequest: (b: Uint8Array) => fromBinary(input, b),
      serializeResponse: (msg: MessageShape<typeof output>) => toBinary(output, create(output, msg)),
      deserializeResponse: (b: Uint8Array) => fromBinary(output, b),
    };
  }
  return out;
}
