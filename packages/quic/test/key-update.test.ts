import { fromHex, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { KeyPhaseState } from '../src/crypto/key-update.ts';
import { derivePacketKeys, nodeQuicCrypto, type PacketKeys } from '../src/crypto/keys.ts';
import { decryptPayload, openPacket, removeHeaderProtection, sealPacket } from '../src/crypto/protect.ts';
import { decodePacketNumber } from '../src/packet/number.ts';
import * as A from './vectors/rfc9001.ts';

const qc = nodeQuicCrypto;
const DCID = new Uint8Array(0);

function send(s: KeyPhaseState, pn: number, body: number): Uint8Array {
  s.onPacketSent(pn);
  return sealPacket(
    s.tx,
    {
      type: '1-RTT',
      dcid: DCID,
      spinBit: false,
      reservedBits: 0,
      keyPhase: s.keyPhase,
      packetNumberLength: 2,
      truncatedPacketNumber: pn,
    },
    pn,
    Uint8Array.of(body, 0, 0, 0),
  );
}

/** What a receiver does (RFC 9001 §6.3): remove header protection, read the Key Phase bit, pick keys, decrypt. */
function receive(
  s: KeyPhaseState,
  packet: Uint8Array,
  largest: number,
): { pn: number; body: number } | undefined {
  const unmasked = removeHeaderProtection(s.rx.hpMask, packet, 1);
  const pn = decodePacketNumber(largest, unmasked.truncatedPacketNumber, 16);
  const { keys, choice } = s.keysFor((unmasked.firstByte & 0x04) !== 0, pn);
  const plain = decryptPayload(keys, unmasked, pn, packet);
  if (!plain) return undefined;
  s.onPacketAuthenticated(choice, pn);
  return { pn, body: plain[0]! };
}

function pair(): { a: KeyPhaseState; b: KeyPhaseState } {
  const c = derivePacketKeys(qc, 'TLS_CHACHA20_POLY1305_SHA256', fromHex(A.CHACHA_SECRET));
  const s = derivePacketKeys(qc, 'TLS_CHACHA20_POLY1305_SHA256', new Uint8Array(32).fill(9));
  const other = (k: PacketKeys) => derivePacketKeys(qc, k.suite, k.secret);
  return { a: new KeyPhaseState(qc, c, s), b: new KeyPhaseState(qc, other(s), other(c)) };
}

describe('key update (RFC 9001 §6)', () => {
  it('§6.1: the next phase derives with "quic ku" (A.5 vector) and keeps the header protection key', () => {
    const { a } = pair();
    expect(a.initiate(true)).toBe(true);
    expect(toHex(a.tx.secret)).toBe(A.CHACHA_KU);
    expect(toHex(a.tx.hpKey)).toBe(A.CHACHA_HP);
    expect(a.keyPhase).toBe(true);
  });
  it('§6.1: no update before the handshake is confirmed, nor a second one before an ACK in the current phase', () => {
    const { a } = pair();
    expect(a.initiate(false)).toBe(false);
    expect(a.initiate(true)).toBe(true);
    expect(a.initiate(true)).toBe(false);
    a.onPacketSent(10);
    a.onPacketAcked(9); // sent in the previous phase: does not count
    expect(a.initiate(true)).toBe(false);
    a.onPacketAcked(10);
    expect(a.initiate(true)).toBe(true);
  });
  it('§6.2, §6.3, §6.5: the peer follows an update; late packets of the old phase still open', () => {
    const { a, b } = pair();
    // Phase 0 traffic.
    const p0 = send(a, 0, 0xa0);
    const p1 = send(a, 1, 0xa1);
    expect(receive(b, p0, -1)).toEqual({ pn: 0, body: 0xa0 });
    a.initiate(true);
    const p2 = send(a, 2, 0xa2);
    // B sees the flipped bit, tries the next keys, and follows.
    expect(receive(b, p2, 0)).toEqual({ pn: 2, body: 0xa2 });
    expect([b.keyPhase, b.updates]).toEqual([true, 1]);
    // A packet of the old phase arriving late opens with the previous keys (its pn is below 2).
    expect(receive(b, p1, 2)).toEqual({ pn: 1, body: 0xa1 });
    expect(b.keyPhase).toBe(true);
    // B's replies are in the new phase and open with A's current keys.
    const r = send(b, 0, 0xb0);
    expect(receive(a, r, -1)).toEqual({ pn: 0, body: 0xb0 });
    expect(a.updates).toBe(1);
    // Once the previous keys are gone, an old-phase packet no longer opens (it is tried with the next keys).
    b.discardPrevious();
    expect(receive(b, p1, 2)).toBeUndefined();
    expect(b.updates).toBe(1);
  });
  it('§6.5: right after we update, the peer’s packets still in the old phase open with the previous keys', () => {
    const { a, b } = pair();
    expect(receive(a, send(b, 0, 0xb0), -1)).toEqual({ pn: 0, body: 0xb0 });
    a.initiate(true);
    // B has not seen A's new phase yet: its next packets carry the old bit.
    expect(receive(a, send(b, 1, 0xb1), 0)).toEqual({ pn: 1, body: 0xb1 });
    expect(receive(a, send(b, 2, 0xb2), 1)).toEqual({ pn: 2, body: 0xb2 });
    expect([a.keyPhase, a.updates]).toEqual([true, 1]);
    // B follows A's update; its packets open with A's current keys, and A does not update again.
    expect(receive(b, send(a, 0, 0xa0), -1)).toEqual({ pn: 0, body: 0xa0 });
    expect(receive(a, send(b, 3, 0xb3), 2)).toEqual({ pn: 3, body: 0xb3 });
    expect(a.updates).toBe(1);
  });
  it('openPacket with the wrong phase’s keys fails authentication', () => {
    const { a } = pair();
    const p = send(a, 0, 1);
    a.initiate(true);
    expect(openPacket(a.tx, p, 1, -1)).toBeUndefined();
  });
});
