import { describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { ConnectionCore } from '../src/connection/core.ts';
import type { KeyPhaseState } from '../src/crypto/key-update.ts';
import { derivePacketKeys, nodeQuicCrypto } from '../src/crypto/keys.ts';
import { TransportErrorCode } from '../src/errors.ts';
import { confirmedPair } from './connection-helpers.ts';

/**
 * KEY_UPDATE_ERROR (RFC 9001 §6.2, §6.4). The misbehaving peer is one of our own
 * connections with its key phase state pushed where a correct one never goes: a second
 * update before an acknowledgement in the current phase, or a packet sealed with the old
 * keys after newer ones were used.
 */

function core(conn: QuicConnection): ConnectionCore {
  return (conn as unknown as { c: ConnectionCore }).c;
}
function phases(conn: QuicConnection): KeyPhaseState {
  const k = core(conn).keys.oneRtt;
  if (!k) throw new Error('no 1-RTT keys');
  return k;
}
/** Rotates keys as `initiate` does, without its §6.1 checks. */
function forceUpdate(conn: QuicConnection): void {
  (phases(conn) as unknown as { rotate(): void }).rotate();
}

function confirmed(seed: number) {
  const { now: confirmedAt, ...pair } = confirmedPair(seed);
  // Let the last acknowledgements settle so nothing is owed when the test starts.
  let now = confirmedAt + 100;
  for (let i = 0; i < 5; i++) {
    for (const [a, b] of [
      [pair.client, pair.server],
      [pair.server, pair.client],
    ] as const) {
      if ((a.pollTimeout() ?? Infinity) <= now) a.handleTimeout(now);
      for (let d = a.pollTransmit(now); d; d = a.pollTransmit(now)) b.handle(d, now);
    }
    now += 30;
  }
  return { ...pair, now };
}

/** One stream write from `from`, every datagram it sends delivered to `to`. */
function sendData(from: QuicConnection, to: QuicConnection, now: number, n = 1): void {
  from.write(from.openStream('uni'), new Uint8Array(100).fill(n), true);
  for (let d = from.pollTransmit(now); d; d = from.pollTransmit(now)) to.handle(d, now);
}

describe('KEY_UPDATE_ERROR (RFC 9001 §6.2, §6.4)', () => {
  it('§6.2: a second update before we acknowledged a packet of the first closes with KEY_UPDATE_ERROR', () => {
    const { client, server, now } = confirmed(11);
    // A legitimate first update: the server follows it.
    expect(client.initiateKeyUpdate(now)).toBe(true);
    sendData(client, server, now, 1);
    expect(server.keyUpdates).toBe(1);
    expect(server.state).toBe('established');
    // The server has not sent anything yet, so no ACK of a phase-1 packet: a second update is premature.
    forceUpdate(client);
    sendData(client, server, now + 1, 2);
    expect(server.state).toBe('closing');
    expect(server.closeError).toMatchObject({ source: 'local', code: TransportErrorCode.KEY_UPDATE_ERROR });
    expect(server.counters.get('quic.key-update.consecutive')).toBe(1);
    // CONNECTION_CLOSE goes out (the misbehaving client, in a phase the server never reached, may not read it).
    expect(server.pollTransmit(now + 2)).toBeDefined();
  });

  it('§6.2: the same second update after our ACK in the new phase is followed', () => {
    const { client, server, now } = confirmed(12);
    expect(client.initiateKeyUpdate(now)).toBe(true);
    sendData(client, server, now, 1);
    // The server's ACK of the phase-1 packet, sent under phase-1 keys, reaches the client.
    const ackAt = now + 30;
    server.handleTimeout(ackAt);
    let acks = 0;
    for (let d = server.pollTransmit(ackAt); d; d = server.pollTransmit(ackAt)) {
      client.handle(d, ackAt);
      acks++;
    }
    expect(acks).toBeGreaterThan(0);
    // Now the client may update again (§6.1) and does, legitimately.
    expect(client.initiateKeyUpdate(ackAt)).toBe(true);
    sendData(client, server, ackAt + 1, 2);
    expect(server.state).toBe('established');
    expect(server.keyUpdates).toBe(2);
    expect(server.counters.get('quic.key-update.consecutive')).toBe(0);
  });

  it('§6.2: the first update of a connection needs no earlier acknowledgement', () => {
    const { client, server, now } = confirmed(13);
    forceUpdate(client);
    sendData(client, server, now, 1);
    expect(server.state).toBe('established');
    expect(server.keyUpdates).toBe(1);
  });

  it('§6.4: a packet sealed with the old keys after newer ones were used closes with KEY_UPDATE_ERROR', () => {
    const { client, server, now } = confirmed(14);
    const k = phases(client);
    const oldTx = k.tx;
    const oldPhase = k.keyPhase;
    expect(client.initiateKeyUpdate(now)).toBe(true);
    sendData(client, server, now, 1);
    expect(server.keyUpdates).toBe(1);
    // The client goes back to the old keys for a higher packet number.
    k.tx = oldTx;
    k.keyPhase = oldPhase;
    sendData(client, server, now + 1, 2);
    expect(server.state).toBe('closing');
    expect(server.closeError).toMatchObject({ code: TransportErrorCode.KEY_UPDATE_ERROR });
    expect(server.closeError?.reason).toMatch(/RFC 9001 §6.4/);
    expect(server.counters.get('quic.key-update.old-keys')).toBe(1);
  });

  it('§6.4 does not fire on garbage of the other phase: it fails authentication and is dropped', () => {
    const { client, server, now } = confirmed(15);
    expect(client.initiateKeyUpdate(now)).toBe(true);
    sendData(client, server, now, 1);
    const k = phases(client);
    // Old phase bit, keys of neither phase: the next keys fail, and so do the previous ones.
    k.keyPhase = !k.keyPhase;
    const wrong = derivePacketKeys(nodeQuicCrypto, k.tx.suite, new Uint8Array(32).fill(3));
    k.tx = { ...wrong, hpMask: k.tx.hpMask, hpKey: k.tx.hpKey };
    sendData(client, server, now + 1, 2);
    expect(server.state).toBe('established');
    expect(server.counters.get('quic.rx.dropped')).toBeGreaterThan(0);
    expect(server.counters.get('quic.key-update.old-keys')).toBe(0);
  });
});
