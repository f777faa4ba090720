import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatBytes, fromHex, toHex } from '@stepwire/wire';
import { afterAll, describe, expect, it } from 'vitest';
import { derivePacketKeys, initialKeys, nodeQuicCrypto } from '../src/crypto/keys.ts';
import { sealPacket } from '../src/crypto/protect.ts';
import { encodeFrames, type Frame } from '../src/frames/frame.ts';
import { decodeH3Frames, FakeQuicPair, Http3Client, Http3Server } from '../src/h3/index.ts';
import { ipUdp, rawPcap, tsharkFields } from './support/capture.ts';
import * as A from './vectors/rfc9001.ts';

/**
 * Wireshark's HTTP/3 dissector as an independent reader of what our HTTP/3 connection
 * writes. A client/server exchange runs over the in-memory QUIC pair; every stream's bytes
 * are then put in STREAM frames of 1-RTT packets after the RFC 9001 Appendix A Initial
 * packets (whose ClientHello is changed to offer ALPN "h3", so tshark hands the streams to
 * HTTP/3), protected with keys from a key log. tshark must find our stream types, frame
 * types and lengths and SETTINGS, and nothing malformed. (tshark 4.0 does not decode QPACK
 * field sections; our QPACK is checked against nghttp3 in ngtcp2-relay.test.ts.)
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-h3-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The RFC 9001 A.2 client Initial with its ALPN list ("alpn") replaced by "h3" and "x",
 * the same length, so every other byte and length stays the RFC's.
 */
function clientInitialOfferingH3(): Uint8Array {
  const crypto = A.CLIENT_CRYPTO_FRAME.replace('0010000700050461' + '6c706e', '0010000700050268' + '330178');
  expect(crypto).not.toBe(A.CLIENT_CRYPTO_FRAME);
  const frame = fromHex(crypto);
  const payload = new Uint8Array(A.CLIENT_PAYLOAD_LENGTH);
  payload.set(frame, 0); // the rest is PADDING (zero bytes)
  const { client } = initialKeys(nodeQuicCrypto, fromHex(A.DCID));
  const header = {
    type: 'Initial' as const,
    version: 1,
    dcid: fromHex(A.DCID),
    scid: new Uint8Array(0),
    token: new Uint8Array(0),
    reservedBits: 0,
    packetNumberLength: 4 as const,
    truncatedPacketNumber: A.CLIENT_PN,
  };
  return sealPacket(client, header, A.CLIENT_PN, payload);
}

/**
 * The server's first Handshake packet: EncryptedExtensions selecting ALPN "h3" (RFC 8446
 * §4.3.1, RFC 7301 §3.1), which is what tells Wireshark the streams carry HTTP/3.
 */
function serverHandshakeWithAlpnH3(secret: Uint8Array): Uint8Array {
  // EncryptedExtensions (8), length 11: extensions (9 bytes): ALPN (0x0010), length 5, list of 3: "h3".
  const ee = fromHex('0800000b' + '0009' + '00100005' + '0003026833');
  const keys = derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', secret);
  const header = {
    type: 'Handshake' as const,
    version: 1,
    dcid: new Uint8Array(0),
    scid: fromHex('f067a5502a4262b5'),
    reservedBits: 0,
    packetNumberLength: 2 as const,
    truncatedPacketNumber: 0,
  };
  return sealPacket(keys, header, 0, encodeFrames([{ type: 'CRYPTO', offset: 0, data: ee }]));
}

describe('tshark reads our HTTP/3', () => {
  it('control, QPACK and request streams of a client/server exchange: stream types, frames, SETTINGS', async () => {
    const pair = new FakeQuicPair();
    const server = new Http3Server((_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end('hello from stepwire h3');
    });
    const sconn = server.accept(pair.server);
    pair.server.handler = (e) => sconn.handle(e);
    const client = new Http3Client(pair.client, { authority: 'example.com' });
    pair.client.handler = (e) => client.handle(e);
    pair.connect();
    pair.run();
    const p = client.request(
      { ':method': 'POST', ':path': '/submit', 'x-custom': 'stepwire' },
      'request body',
    );
    let done = false;
    void p.finally(() => {
      done = true;
    });
    for (let round = 0; round < 1000 && !done; round++) {
      pair.run();
      await new Promise((r) => setImmediate(r));
    }
    const res = await p;
    expect(res.status).toBe(200);

    // Secrets of our choosing, named in a key log by the A.2 ClientHello's random.
    const clientSecret = new Uint8Array(32).fill(0x11);
    const serverSecret = new Uint8Array(32).fill(0x22);
    const serverHandshakeSecret = new Uint8Array(32).fill(0x33);
    const clientHandshakeSecret = new Uint8Array(32).fill(0x44);
    const clientRandom = 'ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c';
    const keylog = join(dir, 'keylog.txt');
    writeFileSync(
      keylog,
      [
        `CLIENT_HANDSHAKE_TRAFFIC_SECRET ${clientRandom} ${toHex(clientHandshakeSecret)}`,
        `SERVER_HANDSHAKE_TRAFFIC_SECRET ${clientRandom} ${toHex(serverHandshakeSecret)}`,
        `CLIENT_TRAFFIC_SECRET_0 ${clientRandom} ${toHex(clientSecret)}`,
        `SERVER_TRAFFIC_SECRET_0 ${clientRandom} ${toHex(serverSecret)}`,
        '',
      ].join('\n'),
    );
    const keys = {
      client: derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', clientSecret),
      server: derivePacketKeys(nodeQuicCrypto, 'TLS_AES_128_GCM_SHA256', serverSecret),
    };
    const packets = [
      ipUdp(clientInitialOfferingH3(), true),
      ipUdp(
        concatBytes(fromHex(A.SERVER_PROTECTED), serverHandshakeWithAlpnH3(serverHandshakeSecret)),
        false,
      ),
    ];
    const pn = { client: 0, server: 0 };
    for (const side of ['client', 'server'] as const) {
      const endpoint = side === 'client' ? pair.client : pair.server;
      for (const id of [...endpoint.written.keys()].sort((a, b) => a - b)) {
        const bytes = endpoint.bytesOf(id);
        for (let offset = 0; offset < bytes.length; offset += 1000) {
          const data = bytes.subarray(offset, Math.min(bytes.length, offset + 1000));
          const frame: Frame = {
            type: 'STREAM',
            streamId: id,
            offset,
            hasOffset: offset > 0,
            hasLength: false,
            fin: false,
            data,
          };
          const header = {
            type: '1-RTT' as const,
            // A.3: the server's SCID; the client's is empty.
            dcid: side === 'client' ? fromHex('f067a5502a4262b5') : new Uint8Array(0),
            spinBit: false,
            reservedBits: 0,
            keyPhase: false,
            packetNumberLength: 2 as const,
            truncatedPacketNumber: pn[side],
          };
          packets.push(
            ipUdp(sealPacket(keys[side], header, pn[side]++, encodeFrames([frame])), side === 'client'),
          );
        }
      }
    }
    const file = join(dir, 'h3.pcap');
    writeFileSync(file, rawPcap(packets));
    const opts = ['-o', `tls.keylog_file:${keylog}`];
    const problems = tsharkFields(
      file,
      ['frame.number', '_ws.expert.message'],
      [...opts, '-Y', '_ws.malformed || _ws.expert.severity >= 6291456 || quic.decryption_failed'],
    );
    expect(problems).toEqual([]);
    const rows = tsharkFields(
      file,
      [
        'quic.stream.stream_id',
        'http3.stream_type',
        'http3.frame_type',
        'http3.frame_length',
        'http3.settings.id',
        'http3.settings.value',
      ],
      [...opts, '-Y', 'quic.short'],
    );
    const byStream = new Map(rows.map((r) => [Number(r[0]), r.slice(1)]));
    // RFC 9114 §6.2: our unidirectional streams and their types, on both sides.
    for (const [control, encoder, decoder] of [
      [2, 6, 10],
      [3, 7, 11],
    ] as const) {
      expect(byStream.get(control)?.[0]).toBe('0');
      expect(byStream.get(encoder)?.[0]).toBe('2');
      expect(byStream.get(decoder)?.[0]).toBe('3');
      // §6.2.1: SETTINGS (4) first, then our reserved frame type 0x1f * 3 + 0x21 (§7.2.8).
      expect(byStream.get(control)?.[1]).toBe(`4,${0x1f * 3 + 0x21}`);
      // Our SETTINGS, with the reserved identifier 0x1f * 7 + 0x21 (§7.2.4.1).
      expect(byStream.get(control)?.[3]).toBe(`1,7,6,${0x1f * 7 + 0x21}`);
      expect(byStream.get(control)?.[4]).toBe('4096,16,65536,20823');
    }
    // The request and the response on stream 0: HEADERS then DATA with the body's length.
    const request = rows.filter((r) => r[0] === '0');
    expect(request.map((r) => r[2])).toEqual(['1,0', '1,0']);
    // The HEADERS lengths are what our encoder produced; the DATA lengths are the bodies'.
    const headersLength = (b: Uint8Array) => {
      const f = decodeH3Frames(b)[0];
      return f?.type === 'HEADERS' ? f.fieldSection.length : -1;
    };
    const reqHeaders = headersLength(pair.client.bytesOf(0));
    const resHeaders = headersLength(pair.server.bytesOf(0));
    expect(request.map((r) => r[3])).toEqual([
      `${reqHeaders},${'request body'.length}`,
      `${resHeaders},${'hello from stepwire h3'.length}`,
    ]);
  });
});
