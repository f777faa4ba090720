/**
 * h2c upgrade from HTTP/1.1 (RFC 7540 §3.2), the h2 side: the request that asked becomes
 * stream 1, half-closed (remote); the HTTP2-Settings payload binds the server without an
 * ACK (§3.2.1); a malformed payload is refused before anything is written; which requests
 * may be upgraded at all.
 */
import { describe, expect, it } from 'vitest';
import type { Field } from '../../src/h1/codec.ts';
import {
  ErrorCode,
  encodeFrame,
  Http2Connection,
  Http2Error,
  h2cUpgradeSettings,
} from '../../src/h2/internal.ts';
import { RawPeer, req, status } from './harness.ts';

/** A SETTINGS frame's payload, as HTTP2-Settings carries it (base64url of this). */
function payload(settings: [number, number][]): Uint8Array {
  return encodeFrame({ type: 'SETTINGS', ack: false, settings }).subarray(9);
}

describe('Http2Connection.acceptUpgrade', () => {
  it('the upgraded request is stream 1, half-closed (remote); its answer goes on stream 1; the payload binds with no ACK', () => {
    const conn = new Http2Connection({ role: 'server' });
    conn.start(0);
    conn.acceptUpgrade(
      payload([
        [0x3, 7],
        [0x4, 1 << 20],
      ]),
      req('/up'),
    );
    const evs = conn.takeEvents();
    expect(evs).toContainEqual({
      type: 'headers',
      streamId: 1,
      kind: 'request',
      headers: req('/up'),
      endStream: true,
    });
    expect(conn.streamState(1)).toBe('half-closed (remote)');
    expect(conn.remoteSettings.maxConcurrentStreams).toBe(7);
    expect(conn.remoteSettings.initialWindowSize).toBe(1 << 20);
    const peer = new RawPeer(conn);
    const first = peer.handshake();
    // One ACK: for the SETTINGS frame after the client's preface, none for the upgrade's.
    expect(first.filter((f) => f.type === 'SETTINGS' && f.ack)).toHaveLength(1);
    conn.respond(1, status(200), false);
    conn.sendData(1, new TextEncoder().encode('hi'), true);
    const out = peer.read();
    expect(out.map((f) => `${f.type}:${'streamId' in f ? f.streamId : ''}`)).toEqual(['HEADERS:1', 'DATA:1']);
    expect(out[1]).toMatchObject({ type: 'DATA', endStream: true });
    expect(conn.streamState(1)).toBe('closed');
    // The next request of the client is stream 3.
    peer.headers(3, req('/next'));
    expect(peer.events).toContainEqual(
      expect.objectContaining({ type: 'headers', streamId: 3, kind: 'request' }),
    );
    // Stream 1 is closed both ways now: a HEADERS on it is a connection error (RFC 9113 §5.1).
    peer.headers(1, req('/again'));
    expect(peer.read()).toContainEqual(
      expect.objectContaining({ type: 'GOAWAY', errorCode: ErrorCode.STREAM_CLOSED }),
    );
  });

  it('a malformed payload throws Http2Error (length not a multiple of 6, a value out of range)', () => {
    const a = new Http2Connection({ role: 'server' });
    expect(() => a.acceptUpgrade(new Uint8Array(5), req())).toThrow(Http2Error);
    const b = new Http2Connection({ role: 'server' });
    expect(() => b.acceptUpgrade(payload([[0x2, 2]]), req())).toThrow(Http2Error);
    expect(() => new Http2Connection({ role: 'client' }).acceptUpgrade(payload([]), req())).toThrow(
      TypeError,
    );
  });
});

describe('h2cUpgradeSettings: which HTTP/1.1 requests are upgraded', () => {
  const b64 = Buffer.from(payload([[0x3, 100]])).toString('base64url');
  const base: Field[] = [
    ['Host', 'example'],
    ['Connection', 'Upgrade, HTTP2-Settings'],
    ['Upgrade', 'h2c'],
    ['HTTP2-Settings', b64],
  ];
  it('curl --http2 style: decoded payload', () => {
    expect(h2cUpgradeSettings(base)).toEqual(payload([[0x3, 100]]));
    expect(h2cUpgradeSettings([...base.slice(0, 3), ['HTTP2-Settings', '']])).toEqual(new Uint8Array(0));
  });
  it('not upgraded: no h2c token, no or two HTTP2-Settings (RFC 7540 §3.2.1), a body, a bad payload', () => {
    expect(
      h2cUpgradeSettings(base.map(([n, v]) => (n === 'Upgrade' ? [n, 'websocket'] : [n, v]))),
    ).toBeUndefined();
    expect(h2cUpgradeSettings(base.slice(0, 3))).toBeUndefined();
    expect(h2cUpgradeSettings([...base, ['HTTP2-Settings', b64]])).toBeUndefined();
    expect(h2cUpgradeSettings([...base, ['Content-Length', '3']])).toBeUndefined();
    expect(h2cUpgradeSettings([...base, ['Transfer-Encoding', 'chunked']])).toBeUndefined();
    expect(h2cUpgradeSettings([...base.slice(0, 3), ['HTTP2-Settings', 'AAMAA']])).toBeUndefined();
    expect(h2cUpgradeSettings([...base.slice(0, 3), ['HTTP2-Settings', 'not base64!']])).toBeUndefined();
  });
});
