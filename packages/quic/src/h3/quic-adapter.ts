import type { H3Transport } from './types.ts';

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
  canOpenStream?(direction: 'bidi' | 'uni'): boolean;
  streamUnsent?(id: number): number;
}

/**
 * `afterWrite` runs after every operation: a driver that only sends when flushed (QuicDriver)
 * passes a scheduler for its flush(), since a response may be written long after the event
 * that delivered its request (a handler's res.end() in a later tick).
 */
export function h3TransportOverQuic(
  quic: QuicStreamsLike,
  now: () => number,
  afterWrite: () => void = () => {},
): H3Transport {
  return {
    openStream: (kind) => quic.openStream(kind),
    canOpenStream: (kind) => quic.canOpenStream?.(kind) ?? true,
    buffered: (id) => quic.streamUnsent?.(id) ?? 0,
    write: (id, data, fin) => {
      quic.write(id, data, fin);
      afterWrite();
    },
    resetStream: (id, code) => {
      quic.resetStream(id, code);
      afterWrite();
    },
    stopSending: (id, code) => {
      quic.stopSending(id, code);
      afterWrite();
    },
    close: (code, reason) => {
      quic.close(now(), code, reason ?? '', true);
      afterWrite();
    },
  };
}

/** Coalesces calls made in one tick into one call of `flush` in a microtask. */
export function flushSoon(flush: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      flush();
    });
  };
}
