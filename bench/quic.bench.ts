/**
 * QUIC packet protection (RFC 9001 §5): protect + unprotect of a 1200-byte 1-RTT packet
 * per second, with each QUIC crypto configuration ('noble': @noble AEAD and header
 * protection; 'node': node:crypto for both), against node:crypto's raw AEAD sealing and
 * opening the same payload with the same key and nonce pattern — so the ratio shows what
 * header protection, nonce construction and our plumbing cost on top of the AEAD alone.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import {
  derivePacketKeys,
  nobleQuicCrypto,
  nodeQuicCrypto,
  openPacket,
  packetNonce,
  parseProtectedHeader,
  type QuicCipherSuite,
  type QuicCrypto,
  type ShortHeader,
  sealPacket,
} from '@stepwire/quic';
import { type Benchmark, type BenchResult, rate, result } from './lib.ts';

const PACKET = 1200;
const DCID = new Uint8Array(8).fill(0x5a);
/** 1 (first byte) + 8 (DCID) + 4 (packet number) header bytes, 16 tag bytes. */
const HEADER = 1 + DCID.length + 4;
const PAYLOAD = PACKET - HEADER - 16;
const MEASURE_MS = 2000;
const SLICES = 10;

const SUITES: [QuicCipherSuite, 'aes-128-gcm' | 'chacha20-poly1305'][] = [
  ['TLS_AES_128_GCM_SHA256', 'aes-128-gcm'],
  ['TLS_CHACHA20_POLY1305_SHA256', 'chacha20-poly1305'],
];

function oursOp(qc: QuicCrypto, suite: QuicCipherSuite): () => void {
  const secret = new Uint8Array(32).fill(7);
  const tx = derivePacketKeys(qc, suite, secret);
  const rx = derivePacketKeys(qc, suite, secret);
  const payload = new Uint8Array(PAYLOAD).map((_, i) => i & 0xff);
  let pn = 0;
  return () => {
    pn++;
    // A 4-byte packet number (its low 32 bits) keeps every packet exactly 1200 bytes.
    const truncated = pn % 2 ** 32;
    const header: ShortHeader = {
      type: '1-RTT',
      dcid: DCID,
      spinBit: false,
      reservedBits: 0,
      keyPhase: false,
      packetNumberLength: 4,
      truncatedPacketNumber: truncated,
    };
    const packet = sealPacket(tx, header, pn, payload);
    const info = parseProtectedHeader(packet, DCID.length);
    const opened = openPacket(rx, packet, info.pnOffset, pn - 1);
    if (opened === undefined || packet.length !== PACKET) throw new Error('bench packet did not round-trip');
  };
}

/** node:crypto's AEAD alone: seal and open the same payload with the packet's AAD. */
function rawAeadOp(alg: 'aes-128-gcm' | 'chacha20-poly1305'): () => void {
  const key = Buffer.alloc(alg === 'aes-128-gcm' ? 16 : 32, 7);
  const iv = new Uint8Array(12).fill(3);
  const aad = Buffer.alloc(HEADER, 1);
  const payload = Buffer.from(new Uint8Array(PAYLOAD).map((_, i) => i & 0xff));
  const opts = { authTagLength: 16 };
  let pn = 0;
  return () => {
    pn++;
    const nonce = packetNonce(iv, pn);
    const c = createCipheriv(alg as 'aes-128-gcm', key, nonce, opts);
    c.setAAD(aad, { plaintextLength: payload.length });
    const ct = Buffer.concat([c.update(payload), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv(alg as 'aes-128-gcm', key, nonce, opts);
    d.setAuthTag(tag);
    d.setAAD(aad, { plaintextLength: ct.length });
    const pt = Buffer.concat([d.update(ct), d.final()]);
    if (pt.length !== payload.length) throw new Error('raw AEAD did not round-trip');
  };
}

/**
 * Rates of two operations measured in alternating slices, so that load drifting on a
 * shared machine (other processes come and go within a second) hits both sides alike.
 */
function interleavedRates(ours: () => void, peer: () => void): { ours: number; peer: number } {
  const total = { ours: 0, peer: 0 };
  for (let i = 0; i < SLICES; i++) {
    total.peer += rate(peer, MEASURE_MS / SLICES);
    total.ours += rate(ours, MEASURE_MS / SLICES);
  }
  return { ours: total.ours / SLICES, peer: total.peer / SLICES };
}

export const quicBenchmarks: Benchmark[] = [
  {
    name: 'quic packet protection',
    async run() {
      const out: BenchResult[] = [];
      for (const [suite, alg] of SUITES) {
        for (const qc of [nobleQuicCrypto, nodeQuicCrypto]) {
          const { ours, peer } = interleavedRates(oursOp(qc, suite), rawAeadOp(alg));
          out.push(
            result(
              `quic protect+unprotect 1200 B ${suite} (${qc.name})`,
              ours,
              'pkt/s',
              `node:crypto raw ${alg}`,
              peer,
            ),
          );
        }
      }
      return out;
    },
  },
];
