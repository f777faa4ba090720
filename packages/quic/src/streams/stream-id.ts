/**
 * Stream IDs (RFC 9000 §2.1): the two least significant bits say who opened the stream
 * (0x1: server) and whether it is unidirectional (0x2).
 */
export type Role = 'client' | 'server';
export type StreamDirection = 'bidi' | 'uni';

export function streamInitiator(id: number): Role {
  return id % 2 === 0 ? 'client' : 'server';
}
export function streamDirection(id: number): StreamDirection {
  return Math.floor(id / 2) % 2 === 0 ? 'bidi' : 'uni';
}
/** The n-th (0-based) stream of a kind: 4n + type bits (§2.1, Table 1). */
export function streamIdOf(initiator: Role, direction: StreamDirection, n: number): number {
  return 4 * n + (initiator === 'server' ? 1 : 0) + (direction === 'uni' ? 2 : 0);
}
/** The 0-based index of a stream among those of its kind; MAX_STREAMS counts these (§4.6). */
export function streamIndex(id: number): number {
  return Math.floor(id / 4);
}

/**
 * RFC 9000 §3.2, §19.8: which endpoint may send on a stream. A peer that sends STREAM data on
 * a unidirectional stream we opened commits STREAM_STATE_ERROR.
 */
export function canSend(id: number, self: Role): boolean {
  return streamDirection(id) === 'bidi' || streamInitiator(id) === self;
}
export function canReceive(id: number, self: Role): boolean {
  return streamDirection(id) === 'bidi' || streamInitiator(id) !== self;
}
