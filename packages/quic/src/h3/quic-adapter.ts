import type { H3Transport } from './connection.ts';

/**
 * The QUIC connection's stream operations as an H3Transport. QuicConnection (src/connection)
 * closes with the time and a transport/application flag (RFC 9000 §19.19); HTTP/3 always
 * closes with an application error code (CONNECTION_CLOSE type 0x1d, RFC 9114 §8).
 * Structural, so the HTTP/3 core does not depend on the connection's class.
 */
export interface QuicStreamsLike {
  openStream(direction: 'bidi' | 'uni'): number;
  write(id: number, data: Uint8Array, fin?: boolean): void;
  resetStream(id: number, code: number): void;
  stopSending(id: number, code: number): void;
  close(now: number, code?: number, reason?: string, application?: boolean): void;
}

export function h3TransportOverQuic(quic: QuicStreamsLike, now: () => number): H3Transport {
  return {
    openStream: (kind) => quic.openStream(kind),
    write: (id, data, fin) => quic.write(id, data, fin),
    resetStream: (id, code) => quic.resetStream(id, code),
    stopSending: (id, code) => quic.stopSending(id, code),
    close: (code, reason) => quic.close(now(), code, reason ?? '', true),
  };
}
