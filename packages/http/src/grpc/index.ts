/**
 * gRPC over our HTTP/2 (grpc/grpc PROTOCOL-HTTP2.md): the message framing, the call's
 * header fields, the status codes, a server and a client, and the stepwire.Echo service.
 */
export {
  connectGrpc,
  type GrpcCallOptions,
  type GrpcCallStatus,
  GrpcClient,
  GrpcClientCall,
  type GrpcClientOptions,
} from './client.ts';
export {
  GRPC_ACCEPT_ENCODING,
  type GrpcEncoding,
  grpcCompress,
  grpcDecompress,
  isGrpcEncoding,
} from './compression.ts';
export {
  addEchoService,
  type EchoMessage,
  EchoMessageSchema,
  EchoServiceDescriptor,
  echoService,
} from './echo.ts';
export {
  DEFAULT_MAX_MESSAGE_SIZE as GRPC_DEFAULT_MAX_MESSAGE_SIZE,
  decodeGrpcMessage,
  encodeGrpcMessage,
  GRPC_PREFIX_LENGTH,
  type GrpcMessage,
  GrpcMessageReader,
} from './framing.ts';
export {
  decodeGrpcMessageText,
  decodeGrpcTimeout,
  encodeGrpcMessageText,
  encodeGrpcTimeout,
  GRPC_TIMEOUT_MAX_VALUE,
  GRPC_TIMEOUT_UNIT_MS,
  type GrpcMetadata,
  type GrpcTimeout,
  type GrpcTimeoutUnit,
  grpcTimeoutFromMillis,
  grpcTimeoutToMillis,
} from './headers.ts';
export {
  type GrpcHandler,
  type GrpcImplementation,
  GrpcServer,
  type GrpcServerCall,
  type GrpcServerOptions,
  type GrpcServerStats,
  isGrpcRequest,
} from './server.ts';
export {
  type AnyGrpcMethod,
  type GrpcMethod,
  type GrpcMethodKind,
  type GrpcServiceDefinition,
  grpcRawMethod,
  grpcServiceFromDescriptor,
} from './service.ts';
export {
  GrpcError,
  GrpcStatus,
  type GrpcStatusCode,
  grpcStatusFromHttp,
  grpcStatusFromRstStream,
  grpcStatusName,
} from './status.ts';
