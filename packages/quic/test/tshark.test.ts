import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc } from '@fast-check/vitest';
import { concatBytes, fromHex, toHex, utf8 } from '@stepwire/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { derivePacketKeys, initialKeys, nodeQuicCrypto } from '../src/crypto/keys.ts';
import { sealPacket } from '../src/crypto/protect.ts';
import { buildRetry } from '../src/crypto/retry.ts';
import { encodeFrames, type Frame } from '../src/frames/frame.ts';
import { FRAME_RULES, frameAllowedIn } from '../src/frames/legality.ts';
import { encodeVersionNegotiation, type PacketType } from '../src/packet/header.ts';
import { arbitraryFrameOf } from '../src/testing.ts';
import { ipUdp, rawPcap, tsharkFields } from './support/capture.ts';
import * as A from './vectors/rfc9001.ts';

/**
 * Wireshark as an independent oracle for the codecs and packet protection: packets we
 * build and protect are written to a pcap; tshark must decrypt them (Initial keys from the
 * DCID, 1-RTT keys from a key log) and dissect the same frames we encoded, with no
 * malformed packet and no expert error. tshark is a required peer of the test suite.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-quic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(file: string, extra: string[] = []): string[][] {
  return tsharkFields(
    file,
    ['frame.number', '_ws.expert.message'],
    [...extra, '-Y', '_ws.malformed || _ws.expert.severity >= 6291456 || quic.decryption_failed'],
  );
}

/** Frames of one packet type, drawn from our arbitraries with a fixed seed (tests are deterministic). */
function framesFor(
  packet: PacketType,
  seed: number,
  count: number,
  exclude: Frame['type'][] = [],
): Frame[][] {
  const legal = arbitraryFrameOf(false).filter((f) => frameAllowedIn(f, packet) && !exclude.includes(f.type));
  return fc.sample(fc.array(legal, { minLength: 1, maxLength: 6 }), { seed, numRuns: count }).map((fs) =>
    // Adjacent PADDING runs are one frame on the wire; keep them apart.
    fs.filter((f, i) => !(f.type === 'PADDING' && fs[i + 1]?.type === 'PADDING')),
  );
}

/** The frame type codes tshark should list for a payload (a PADDING run is one frame). */
function expectedTypes(frames: Frame[]): string {
  return frames
    .map((f) => {
      const b = encodeFrames([f]);
      return String(b[0]! < 0x40 ? b[0] : ((b[0]! & 0x3f) << 8) | b[1]!);
    })
    .join(',');
}

describe('tshark dissects our QUIC packets', () => {
  it('Initial packets with every frame Initial allows (keys from each DCID, RFC 9001 §5.2)', () => {
    const payloads = framesFor('Initial', 42, 40, ['CRYPTO']);
    const packets = payloads.map((frames, i) => {
      const dcid = Uint8Array.from({ length: 8 }, (_, k) => (i * 17 + k * 31 + 1) & 0xff);
      const { client } = initialKeys(nodeQuicCrypto, dcid);
      let payload = encodeFrames(frames);
      // RFC 9001 §5.4.2: enough bytes for the header protection sample.
      if (payload.length < 4) {
        frames = [...frames, { type: 'PADDING', length: 4 }];
        payloads[i] = frames;
        payload = encodeFrames(
          frames.filter((f, k) => !(f.type === 'PADDING' && frames[k + 1]?.type === 'PADDING')),
        );
      }
      const header = {
        type: 'Initial' as const,
        version: 1,
        dcid,
        scid: fromHex('c1c2c3c4'),
        token: new Uint8Array(0),
        reservedBits: 0,
        packetNumberLength: 2 as const,
        truncatedPacketNumber: i,
      };
      return ipUdp(sealPacket(client, header, i, payload), true);
    });
    const file = join(dir, 'initial.pcap');
    writeFileSync(file, rawPcap(packets));
    expect(problems(file)).toEqual([]);
    const rows = tsharkFields(file, ['quic.packet_number', 'quic.frame_type']);
    expect(rows).toHaveLength(payloads.length);
    rows.forEach((r, i) => {
      expect(r[0]).toBe(String(i));
      expect(r[1]).toBe(
        expectedTypes(
          payloads[i]!.filter((f, k, a) => !(f.type === 'PADDING' && a[k + 1]?.type === 'PADDING')),
        ),
      );
    });
  });

  it('1-RTT packets with every frame 1-RTT allows, decrypted with a key log after the RFC 9001 A.2/A.3 handshake start', () => {
    // The RFC's client and server Initial packets give tshark the ClientHello (its client
    // random names the key log lines) and the ServerHello (TLS_AES_128_GCM_SHA256).
    const clientRandom = 'ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c';
    const clientSecret = new Uint8Array(32).fill(0x11);
    const serverSecret = new Uint8Array(32).fill(0x22);
    const keylog = join(dir, 'keylog.txt');
    writeFileSync(
      keylog,
      `CLIENT_TRAFFIC_SECRET_0 ${clientRandom} ${toHex(clientSecret)}\nSERVER_TRAFFIC_SECRET_0 ${clientRandom} ${toHex(serverSecret)}\n`,
    );
    const tx = derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', clientSecret);
    const payloads = framesFor('1-RTT', 7, 60);
    // The sample covers every frame type 1-RTT allows (Table 3 plus DATAGRAM).
    const legal = Object.entries(FRAME_RULES).filter(([, r]) => r.packets.includes('1-RTT'));
    expect(new Set(payloads.flat().map((f) => f.type)).size).toBe(legal.length);
    const packets = [ipUdp(fromHex(A.CLIENT_PROTECTED), true), ipUdp(fromHex(A.SERVER_PROTECTED), false)];
    payloads.forEach((frames, i) => {
      let payload = encodeFrames(frames);
      if (payload.length < 3) payload = concatBytes(payload, new Uint8Array(3)); // PADDING for the sample
      const header = {
        type: '1-RTT' as const,
        dcid: fromHex('f067a5502a4262b5'), // the server's SCID from A.3
        spinBit: i % 2 === 0,
        reservedBits: 0,
        keyPhase: false,
        packetNumberLength: 1 as const,
        truncatedPacketNumber: i,
      };
      packets.push(ipUdp(sealPacket(tx, header, i, payload), true));
    });
    const file = join(dir, 'onertt.pcap');
    writeFileSync(file, rawPcap(packets));
    const opts = ['-o', `tls.keylog_file:${keylog}`];
    expect(problems(file, opts)).toEqual([]);
    const rows = tsharkFields(
      file,
      [
        'quic.short',
        'quic.packet_number',
        'quic.frame_type',
        'quic.stream.stream_id',
        'quic.ack.largest_acknowledged',
        'quic.ack.first_ack_range',
        'quic.ms.max_streams',
        'quic.nci.sequence',
      ],
      [...opts, '-Y', 'quic.short'],
    );
    expect(rows).toHaveLength(payloads.length);
    const list = (xs: number[]) => xs.join(',');
    rows.forEach((r, i) => {
      expect(r[1]).toBe(String(i));
      const frames = payloads[i]!;
      const types = expectedTypes(frames);
      // Padding we appended for the sample shows as one more PADDING frame.
      expect([types, `${types},0`]).toContain(r[2]);
      const of = <T extends Frame['type']>(t: T) =>
        frames.filter((f): f is Extract<Frame, { type: T }> => f.type === t);
      expect(r[3] ?? '').toBe(list(of('STREAM').map((f) => f.streamId)));
      expect(r[4] ?? '').toBe(list(of('ACK').map((f) => f.largestAcknowledged)));
      expect(r[5] ?? '').toBe(list(of('ACK').map((f) => f.firstAckRange)));
      expect(r[6] ?? '').toBe(list(of('MAX_STREAMS').map((f) => f.maximumStreams)));
      expect(r[7] ?? '').toBe(list(of('NEW_CONNECTION_ID').map((f) => f.sequenceNumber)));
    });
  });

  it('Retry (tag verified by tshark, RFC 9001 §5.8) and Version Negotiation packets', () => {
    const odcid = fromHex('0badc0de0badc0de');
    const scid = fromHex('c1c2c3c4');
    const { client } = initialKeys(nodeQuicCrypto, odcid);
    const initial = sealPacket(
      client,
      {
        type: 'Initial',
        version: 1,
        dcid: odcid,
        scid,
        token: new Uint8Array(0),
        reservedBits: 0,
        packetNumberLength: 1,
        truncatedPacketNumber: 0,
      },
      0,
      encodeFrames([{ type: 'PING' }, { type: 'PADDING', length: 1100 }]),
    );
    const retryFields = {
      version: 1,
      unusedBits: 0,
      dcid: scid,
      scid: fromHex('5e5e5e5e5e5e5e5e'),
      retryToken: utf8('stepwire-token'),
    };
    const good = buildRetry(nodeQuicCrypto.crypto, odcid, retryFields);
    // The same Retry tagged for another ODCID: tshark must flag it (our negative control).
    const bad = buildRetry(nodeQuicCrypto.crypto, fromHex('0000000000000000'), retryFields);
    const vn = encodeVersionNegotiation({
      type: 'VersionNegotiation',
      unusedBits: 0x40,
      dcid: scid,
      scid: odcid,
      supportedVersions: [1, 0x6b3343cf],
    });
    const file = join(dir, 'retry.pcap');
    writeFileSync(
      file,
      rawPcap([
        ipUdp(initial, true),
        ipUdp(good, false),
        ipUdp(initial, true),
        ipUdp(bad, false),
        ipUdp(vn, false),
      ]),
    );
    const rows = tsharkFields(file, [
      'frame.number',
      'quic.retry_token',
      'quic.bad_retry',
      'quic.supported_version',
    ]);
    expect(rows[1]?.[1]).toBe(toHex(utf8('stepwire-token')));
    expect(rows[1]?.[2] ?? '').toBe('');
    expect(rows[3]?.[2]).not.toBe('');
    expect(rows[4]?.[3]).toBe('0x00000001,0x6b3343cf');
  });
});
