import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ByteReader, fromHex } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type DatagramEvent, openDatagram } from '../src/crypto/datagram.ts';
import { KeyPhaseState } from '../src/crypto/key-update.ts';
import {
  derivePacketKeys,
  initialKeys,
  nodeQuicCrypto,
  QUIC_SUITE_BY_CODE,
  type QuicCipherSuite,
} from '../src/crypto/keys.ts';
import { ackFrameRanges, type Frame } from '../src/frames/frame.ts';
import { countsInFlight, isAckEliciting } from '../src/frames/legality.ts';
import { replayH3 } from '../src/h3/replay.ts';
import { parseProtectedHeader } from '../src/packet/header.ts';
import { readVarint, readVarintLimit } from '../src/packet/varint.ts';
import { type Field, QpackDecoder } from '../src/qpack/decoder.ts';
import { Recovery } from '../src/recovery/loss.ts';
import { checkTransportParametersFrom, decodeTransportParameters } from '../src/transport-parameters.ts';
import {
  closeNgtcp2,
  gtlsSite,
  h3Frames,
  loopbackSocket,
  runGtlsClient,
  startGtlsServer,
} from './support/ngtcp2.ts';

/**
 * Real QUIC and HTTP/3 traffic as an oracle for everything below the connection: ngtcp2's
 * gtlsclient fetches a file from gtlsserver through a UDP relay of ours on loopback; GnuTLS
 * writes its secrets to SSLKEYLOGFILE. Every datagram the relay saw must open with our
 * code — Initial, Handshake and 1-RTT protection, coalescing, every frame, the server's
 * transport parameters — and nghttp3's QPACK-encoded request and response headers (with
 * its encoder stream and Huffman strings) must decode with our QPACK decoder.
 */

const BODY = 'stepwire over ngtcp2\n'.repeat(300);
const site = gtlsSite('stepwire-quic-relay-', { 'index.html': BODY });
afterAll(() => site.remove());
afterEach(closeNgtcp2);

interface Captured {
  fromClient: boolean;
  bytes: Uint8Array;
  /** When the relay saw it (ms). */
  at: number;
}

/** Runs one fetch through the relay; returns every datagram and the key log. */
async function fetchThroughRelay(
  ciphers: string,
  extra: string[] = [],
): Promise<{ captured: Captured[]; keylog: Map<string, Uint8Array> }> {
  const { port: serverPort } = await startGtlsServer(site);
  const relay = await loopbackSocket();
  const captured: Captured[] = [];
  let clientPort: number | undefined;
  relay.on('message', (msg, rinfo) => {
    const fromClient = rinfo.port !== serverPort;
    if (fromClient) clientPort = rinfo.port;
    captured.push({ fromClient, bytes: new Uint8Array(msg), at: performance.now() });
    const to = fromClient ? serverPort : clientPort;
    if (to !== undefined) relay.send(msg, to, '127.0.0.1');
  });
  const keylogFile = join(site.dir, `keylog-${serverPort}.txt`);
  const port = relay.address().port;
  const { code } = await runGtlsClient(port, {
    args: [`--ciphers=${ciphers}`, ...extra],
    paths: ['/index.html'],
    timeout: false,
    env: { ...process.env, SSLKEYLOGFILE: keylogFile },
  });
  expect(code).toBe(0);
  const keylog = new Map<string, Uint8Array>();
  for (const line of readFileSync(keylogFile, 'utf8').split('\n')) {
    const [label, , secret] = line.split(' ');
    if (label && secret) keylog.set(label, fromHex(secret));
  }
  return { captured, keylog };
}

/** Reassembles stream or CRYPTO data by offset (loopback may still reorder or retransmit). */
class Reassembly {
  private readonly chunks = new Map<number, Uint8Array>();
  add(offset: number, data: Uint8Array): void {
    if (data.length > 0) this.chunks.set(offset, data);
  }
  bytes(): Uint8Array {
    let end = 0;
    for (const [o, d] of this.chunks) end = Math.max(end, o + d.length);
    const out = new Uint8Array(end);
    for (const [o, d] of this.chunks) out.set(d, o);
    return out;
  }
}

/** The suite from the ServerHello at the start of the server's Initial CRYPTO data (RFC 8446 §4.1.3). */
function serverHelloSuite(crypto: Uint8Array): QuicCipherSuite {
  expect(crypto[0]).toBe(2);
  const sidLen = crypto[4 + 2 + 32]!;
  const at = 4 + 2 + 32 + 1 + sidLen;
  const suite = QUIC_SUITE_BY_CODE.get((crypto[at]! << 8) | crypto[at + 1]!);
  if (!suite) throw new Error('unknown suite');
  return suite;
}

/** The quic_transport_parameters extension of EncryptedExtensions (RFC 8446 §4.3.1, RFC 9001 §8.2). */
function encryptedExtensionsTp(hs: Uint8Array): Uint8Array {
  expect(hs[0]).toBe(8);
  const end = 4 + ((hs[4]! << 8) | hs[5]!) + 2;
  for (let at = 6; at < end; ) {
    const type = (hs[at]! << 8) | hs[at + 1]!;
    const len = (hs[at + 2]! << 8) | hs[at + 3]!;
    if (type === 0x39) return hs.subarray(at + 4, at + 4 + len);
    at += 4 + len;
  }
  throw new Error('no quic_transport_parameters');
}

function h3Settings(payload: Uint8Array): Map<number, number> {
  const r = new ByteReader(payload, 'h3');
  const m = new Map<number, number>();
  // Reserved (grease) settings may carry any 62-bit value (RFC 9114 §7.2.4.1): limits saturate.
  while (!r.atEnd) m.set(readVarintLimit(r, 'id'), readVarintLimit(r, 'value'));
  return m;
}

interface Side {
  streams: Map<number, Reassembly>;
  crypto: Record<'Initial' | 'Handshake', Reassembly>;
  frames: Frame[];
}

describe('ngtcp2 client ↔ ngtcp2 server through our relay, decoded by our stack', () => {
  const suites: [string, QuicCipherSuite, string[]][] = [
    ['+AES-128-GCM', 'TLS_AES_128_GCM_SHA256', []],
    ['+AES-256-GCM', 'TLS_AES_256_GCM_SHA384', []],
    ['+CHACHA20-POLY1305', 'TLS_CHACHA20_POLY1305_SHA256', []],
    // RFC 9001 §6: the client updates keys before it sends its request; the server follows.
    ['+AES-128-GCM', 'TLS_AES_128_GCM_SHA256', ['--key-update=1ms', '--delay-stream=30ms']],
  ];
  for (const [cipher, expected, extra] of suites) {
    const keyUpdate = extra.length > 0;
    const name = `${expected}${keyUpdate ? ' with a key update' : ''}`;
    it(`${name}: every datagram opens, frames and transport parameters decode, nghttp3's QPACK decodes`, async () => {
      const qc = nodeQuicCrypto;
      const { captured, keylog } = await fetchThroughRelay(
        `NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:${cipher}`,
        extra,
      );
      const firstClient = captured.find((c) => c.fromClient)!;
      const firstServer = captured.find((c) => !c.fromClient)!;
      // Both ngtcp2 endpoints send grease_quic_bit (RFC 9287) and then set the fixed bit at random.
      const grease = { greaseQuicBit: true };
      const clientHeader = parseProtectedHeader(firstClient.bytes, 0, grease);
      const serverHeader = parseProtectedHeader(firstServer.bytes, 0, grease);
      const odcid = clientHeader.dcid;
      const init = initialKeys(qc, odcid);
      // The server's Initial gives the suite; open it with the Initial keys alone first.
      const serverInitial = openDatagram(firstServer.bytes, {
        shortDcidLength: 0,
        keys: { Initial: init.server },
        largestPn: () => -1,
        ...grease,
      });
      const ev0 = serverInitial[0];
      if (ev0?.kind !== 'packet') throw new Error(`server Initial: ${JSON.stringify(ev0)}`);
      const cryptoFrame = ev0.packet.frames.find((f) => f.type === 'CRYPTO');
      if (cryptoFrame?.type !== 'CRYPTO') throw new Error('no CRYPTO in the server Initial');
      const suite = serverHelloSuite(cryptoFrame.data);
      expect(suite).toBe(expected);
      const secret = (label: string) => {
        const s = keylog.get(label);
        if (!s) throw new Error(`no ${label} in the key log`);
        return derivePacketKeys(qc, suite, s);
      };
      const cTraffic = secret('CLIENT_TRAFFIC_SECRET_0');
      const sTraffic = secret('SERVER_TRAFFIC_SECRET_0');
      const keys = {
        client: {
          Initial: init.client,
          Handshake: secret('CLIENT_HANDSHAKE_TRAFFIC_SECRET'),
          '1-RTT': new KeyPhaseState(qc, sTraffic, cTraffic),
        },
        server: {
          Initial: init.server,
          Handshake: secret('SERVER_HANDSHAKE_TRAFFIC_SECRET'),
          '1-RTT': new KeyPhaseState(qc, cTraffic, sTraffic),
        },
      };
      const largest = { client: new Map<string, number>(), server: new Map<string, number>() };
      const sides: Record<'client' | 'server', Side> = {
        client: {
          streams: new Map(),
          crypto: { Initial: new Reassembly(), Handshake: new Reassembly() },
          frames: [],
        },
        server: {
          streams: new Map(),
          crypto: { Initial: new Reassembly(), Handshake: new Reassembly() },
          frames: [],
        },
      };
      const bad: DatagramEvent[] = [];
      const recovery = {
        client: new Recovery<null>({ isServer: false }),
        server: new Recovery<null>({ isServer: true }),
      };
      const lastSent = { client: new Map<string, number>(), server: new Map<string, number>() };
      recovery.client.handshakeConfirmed = true;
      recovery.server.handshakeConfirmed = true;
      // Packet numbers each side sent per space, and the ACK ranges the other side returned.
      const sent = { client: new Map<string, Set<number>>(), server: new Map<string, Set<number>>() };
      const acked: {
        who: 'client' | 'server';
        space: string;
        ranges: { smallest: number; largest: number }[];
      }[] = [];
      for (const c of captured) {
        const who = c.fromClient ? 'client' : 'server';
        // Short headers carry the CID the receiver chose: the server's SCID toward the server, the client's toward the client.
        const shortDcidLength = c.fromClient ? serverHeader.scid.length : clientHeader.scid.length;
        const events = openDatagram(c.bytes, {
          shortDcidLength,
          keys: keys[who],
          largestPn: (s) => largest[who].get(s) ?? -1,
          ...grease,
        });
        for (const e of events) {
          if (e.kind !== 'packet') {
            bad.push(e);
            continue;
          }
          const space =
            e.packet.type === 'Initial'
              ? 'Initial'
              : e.packet.type === 'Handshake'
                ? 'Handshake'
                : 'ApplicationData';
          largest[who].set(space, Math.max(largest[who].get(space) ?? -1, e.packet.packetNumber));
          if (!sent[who].has(space)) sent[who].set(space, new Set());
          sent[who].get(space)!.add(e.packet.packetNumber);
          for (const f of e.packet.frames)
            if (f.type === 'ACK') acked.push({ who, space, ranges: ackFrameRanges(f) });
          // Our recovery replays each side's sending and the ACKs it got back (RFC 9002 §5, §6).
          const rec = recovery[who];
          const other = recovery[who === 'client' ? 'server' : 'client'];
          if (e.packet.packetNumber > (lastSent[who].get(space) ?? -1)) {
            lastSent[who].set(space, e.packet.packetNumber);
            const frames = e.packet.frames;
            rec.onPacketSent(
              space,
              {
                packetNumber: e.packet.packetNumber,
                ackEliciting: isAckEliciting(frames),
                inFlight: countsInFlight(frames),
                sentBytes: e.packet.size,
                timeSent: c.at,
                frames: null,
              },
              c.at,
            );
          }
          for (const f of e.packet.frames) {
            if (f.type !== 'ACK') continue;
            // ngtcp2 uses the default ack_delay_exponent of 3 (RFC 9000 §18.2).
            const out = other.onAckReceived(
              space,
              { ranges: ackFrameRanges(f), ackDelay: (f.ackDelay * 8) / 1000, ecnCounts: f.ecnCounts },
              c.at,
            );
            expect(out.error).toBeUndefined();
          }
          for (const f of e.packet.frames) {
            sides[who].frames.push(f);
            if (f.type === 'CRYPTO' && (e.packet.type === 'Initial' || e.packet.type === 'Handshake'))
              sides[who].crypto[e.packet.type].add(f.offset, f.data);
            if (f.type === 'STREAM') {
              let s = sides[who].streams.get(f.streamId);
              if (!s) sides[who].streams.set(f.streamId, (s = new Reassembly()));
              s.add(f.offset, f.data);
            }
          }
        }
      }
      expect(bad).toEqual([]);
      // RTT from the relay's point of view: each side's round trip through loopback and its peer.
      for (const who of ['client', 'server'] as const) {
        const rtt = recovery[who].rtt;
        expect(rtt.hasSample).toBe(true);
        expect(rtt.minRtt).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(rtt.smoothedRtt)).toBe(true);
        const inFlight = (['Initial', 'Handshake', 'ApplicationData'] as const)
          .flatMap((sp) => recovery[who].unacked(sp))
          .reduce((n, p) => n + (p.inFlight ? p.sentBytes : 0), 0);
        expect(recovery[who].bytesInFlight).toBe(inFlight);
      }
      // Every packet number an ACK names was sent by the other side in that space (RFC 9000
      // §13.1), so our reading of ACK ranges (§19.3.1) matches ngtcp2's writing of them.
      expect(acked.length).toBeGreaterThan(0);
      for (const a of acked) {
        const theirs = sent[a.who === 'client' ? 'server' : 'client'].get(a.space) ?? new Set<number>();
        for (const r of a.ranges)
          for (let pn = r.smallest; pn <= r.largest; pn++) expect(theirs.has(pn)).toBe(true);
      }
      // Our key phase state followed the peers' update in both directions (and only then).
      expect([keys.client['1-RTT'].updates, keys.server['1-RTT'].updates]).toEqual(
        keyUpdate ? [1, 1] : [0, 0],
      );
      const types = (who: 'client' | 'server') => new Set(sides[who].frames.map((f) => f.type));
      for (const t of ['CRYPTO', 'ACK', 'STREAM', 'PADDING']) expect(types('client')).toContain(t);
      for (const t of ['CRYPTO', 'ACK', 'STREAM', 'HANDSHAKE_DONE', 'NEW_CONNECTION_ID'])
        expect(types('server')).toContain(t);

      // The server's transport parameters (RFC 9000 §7.3, §18.2).
      const tp = decodeTransportParameters(encryptedExtensionsTp(sides.server.crypto.Handshake.bytes()));
      expect(checkTransportParametersFrom(tp, 'server')).toBeUndefined();
      expect(tp.original_destination_connection_id).toEqual(odcid);
      expect(tp.initial_source_connection_id).toEqual(serverHeader.scid);
      expect(tp.grease_quic_bit).toBe(true);
      // This ngtcp2 sends version information under the draft code point 0xff73db rather than
      // RFC 9368's 0x11: kept, in order, as an unknown parameter (RFC 9000 §18.1).
      expect(tp.unknown?.map((u) => u.id)).toContain(0xff73db);
      expect(tp.version_information).toBeUndefined();

      // HTTP/3: each side's control stream SETTINGS tell the other side's QPACK decoder its limits.
      const uni = (who: 'client' | 'server', type: number) => {
        for (const [id, s] of sides[who].streams) {
          if (id % 4 !== (who === 'client' ? 2 : 3)) continue;
          const b = s.bytes();
          const r = new ByteReader(b, 'h3');
          if (readVarint(r, 'streamType') === type) return b.subarray(r.offset);
        }
        return new Uint8Array(0);
      };
      const settings = (who: 'client' | 'server') => {
        const control = h3Frames(uni(who, 0x00));
        expect(control[0]?.type).toBe(0x04); // RFC 9114 §6.2.1: SETTINGS first
        return h3Settings(control[0]!.payload);
      };
      const decoderFor = (encoderSide: 'client' | 'server') => {
        const peer = settings(encoderSide === 'client' ? 'server' : 'client');
        const d = new QpackDecoder({
          maxTableCapacity: peer.get(0x01) ?? 0,
          maxBlockedStreams: peer.get(0x07) ?? 0,
        });
        d.onEncoderStream(uni(encoderSide, 0x02));
        return d;
      };
      const headersOf = (who: 'client' | 'server'): { fields: Field[]; data: Uint8Array[] } => {
        const frames = h3Frames(sides[who].streams.get(0)!.bytes());
        const headers = frames.find((f) => f.type === 0x01)!;
        const r = decoderFor(who).decodeFieldSection(0, headers.payload);
        if (r.status !== 'done') throw new Error(`headers ${r.status}`);
        return { fields: r.fields, data: frames.filter((f) => f.type === 0x00).map((f) => f.payload) };
      };
      // nghttp3 inserts into the dynamic table (the peers allow 4096 bytes): both encoder
      // streams carry instructions, so the decoding below goes through our dynamic table.
      expect(uni('client', 0x02).length).toBeGreaterThan(0);
      expect(uni('server', 0x02).length).toBeGreaterThan(0);
      const request = headersOf('client').fields;
      expect(request).toEqual(
        expect.arrayContaining([
          [':method', 'GET'],
          [':scheme', 'https'],
          [':path', '/index.html'],
        ]),
      );
      const response = headersOf('server');
      expect(response.fields).toEqual(
        expect.arrayContaining([
          [':status', '200'],
          ['content-length', String(BODY.length)],
        ]),
      );
      expect(Buffer.concat(response.data).toString()).toBe(BODY);

      // Our HTTP/3 connection (src/h3) reads the same streams as each endpoint would: the
      // server side gets nghttp3's request, the client side its response, with no error.
      const streamsOf = (who: 'client' | 'server') =>
        new Map([...sides[who].streams].map(([id, s]) => [id, s.bytes()] as const));
      const asServer = replayH3({ role: 'server', local: streamsOf('server'), remote: streamsOf('client') });
      expect(asServer.closedWith).toBeUndefined();
      const req = asServer.events.find((e) => e.type === 'headers');
      expect(req).toMatchObject({ streamId: 0, kind: 'request' });
      expect(req?.type === 'headers' && req.fields).toEqual(
        expect.arrayContaining([[':path', '/index.html']]),
      );
      const asClient = replayH3({ role: 'client', local: streamsOf('client'), remote: streamsOf('server') });
      expect(asClient.closedWith).toBeUndefined();
      expect(asClient.events).toContainEqual(expect.objectContaining({ type: 'settings' }));
      const res = asClient.events.find((e) => e.type === 'headers');
      expect(res?.type === 'headers' && res.fields).toEqual(expect.arrayContaining([[':status', '200']]));
      const body = asClient.events.flatMap((e) => (e.type === 'data' ? [e.data] : []));
      expect(Buffer.concat(body).toString()).toBe(BODY);
    });
  }
});
