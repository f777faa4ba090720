/**
 * @stepwire/quic — QUIC v1 (RFC 9000, 9001, 9002), QPACK (RFC 9204), HTTP/3 (RFC 9114).
 *
 * - Codecs: varints, packet headers and packet numbers (packet/), frames and their
 *   packet-type legality (frames/), transport parameters.
 * - Packet protection (crypto/): Initial secrets, packet keys and key update, AEAD and
 *   header protection over a seam with noble and node:crypto implementations, Retry tags.
 * - Recovery (recovery/): RTT estimation, loss detection and PTO, NewReno (RFC 9002), and
 *   the receiver's ACK generation (RFC 9000 §13.2).
 * - QPACK (qpack/): static table, Huffman code, instructions and field lines, dynamic
 *   table, encoder and decoder with blocked streams (RFC 9204).
 * - HTTP/3 (h3/): frames and stream types, the sans-I/O Http3Connection over an
 *   H3Transport, the (req, res) server adapter, a client, Alt-Svc (RFC 9114).
 */

export * from './connection/connection.ts';
export * from './connection/state.ts';
export { RangeSet, RecvStream, SendStream } from './connection/streams.ts';
export * from './connection/types.ts';
export * from './crypto/datagram.ts';
export * from './crypto/hp.ts';
export * from './crypto/key-update.ts';
export * from './crypto/keys.ts';
export * from './crypto/protect.ts';
export * from './crypto/retry.ts';
export * from './endpoint/driver.ts';
export * from './endpoint/endpoint.ts';
export * from './errors.ts';
export * from './frames/frame.ts';
export * from './frames/legality.ts';
export * from './h3/index.ts';
export * from './packet/header.ts';
export * from './packet/number.ts';
export {
  encodeStatelessReset,
  isStatelessReset,
  MIN_STATELESS_RESET_LENGTH,
  statelessResetTokenOf,
} from './packet/stateless-reset.ts';
export * from './packet/varint.ts';
export * from './qlog.ts';
export * from './qpack/decoder.ts';
export * from './qpack/encoder.ts';
export * from './qpack/huffman.ts';
export * from './qpack/instructions.ts';
export * from './qpack/static-table.ts';
export * from './qpack/table.ts';
export * from './recovery/ack-tracker.ts';
export * from './recovery/congestion.ts';
export * from './recovery/loss.ts';
export * from './recovery/rtt.ts';
export * from './streams/flow-control.ts';
export * from './streams/receive-buffer.ts';
export * from './streams/stream-id.ts';
export * from './summary.ts';
export * from './tls/handshake.ts';
export * from './tls/types.ts';
export * from './transport-parameters.ts';
