/**
 * HTTP/3 (RFC 9114) over any QUIC connection shaped as an H3Transport: the frame codec
 * and stream types, the sans-I/O Http3Connection, the (req, res) server adapter, a
 * client, the Alt-Svc value, and an in-memory transport pair for tests.
 */
export * from './client.ts';
export * from './connection.ts';
export * from './endpoint.ts';
export * from './errors.ts';
export * from './fake-transport.ts';
export * from './frames.ts';
export * from './message.ts';
export * from './quic-adapter.ts';
export * from './replay.ts';
export * from './server.ts';
export {
  FRAME_ON_STREAM as H3_FRAME_ON_STREAM,
  MESSAGE_TRANSITIONS as H3_MESSAGE_TRANSITIONS,
  type MessageInput as H3MessageInput,
  type MessageOutcome as H3MessageOutcome,
  type MessageState as H3MessageState,
  type StreamKind as H3StreamKind,
} from './state.ts';
