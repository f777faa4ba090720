import type { ChildProcess } from 'node:child_process';
import { bytesEqual, concatBytes, fromHex, toHex, utf8 } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { initialKeys, nobleQuicCrypto, nodeQuicCrypto } from '../src/crypto/keys.ts';
import { openPacket, sealPacket } from '../src/crypto/protect.ts';
import { sealRetry, verifyRetry } from '../src/crypto/retry.ts';
import { decodeFrames, encodeFrames, type Frame } from '../src/frames/frame.ts';
import { firstIllegalFrame } from '../src/frames/legality.ts';
import {
  decodeRetry,
  encodePacketHeader,
  encodeRetry,
  encodeVersionNegotiation,
  parseProtectedHeader,
  splitCoalescedPackets,
} from '../src/packet/header.ts';
import { checkTransportParametersFrom, decodeTransportParameters } from '../src/transport-parameters.ts';
import { closeNgtcp2, gtlsSite, loopbackSocket, spawnGtlsClient, startGtlsServer } from './support/ngtcp2.ts';
import * as A from './vectors/rfc9001.ts';

/**
 * ngtcp2's client (gtlsclient, GnuTLS build) as an independent peer, over node:dgram on
 * loopback. We play the server's first move only: the client's Initial packets must
 * unprotect with our Initial keys (both providers), hold frames our codec decodes and
 * Table 3 allows, and a ClientHello whose transport parameters our codec decodes. Then a
 * Retry we build and tag must be accepted: the client's next Initial carries our token and
 * our connection ID (RFC 9000 §17.2.5.2), which ngtcp2 only does after verifying the
 * integrity tag (RFC 9001 §5.8).
 */

const CLIENT_DCID = '0123456789abcdef';
const CLIENT_SCID = 'c0ffee00c0ffee01';

/** The running test's gtlsclient (closeNgtcp2 kills it, by its handle). */
let child: ChildProcess | undefined;
afterEach(() => {
  closeNgtcp2();
  child = undefined;
});

interface Received {
  datagram: Uint8Array;
  port: number;
}

/** Starts a loopback socket and gtlsclient against it; returns the next datagrams on demand. */
async function start(): Promise<{
  next: () => Promise<Received>;
  send: (b: Uint8Array, port: number) => void;
}> {
  const s = await loopbackSocket();
  const queue: Received[] = [];
  const waiters: ((r: Received) => void)[] = [];
  s.on('message', (msg, rinfo) => {
    const r = { datagram: new Uint8Array(msg), port: rinfo.port };
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  });
  const port = s.address().port;
  child = spawnGtlsClient([
    '--quiet',
    '--exit-on-first-stream-close',
    `--dcid=${CLIENT_DCID}`,
    `--scid=${CLIENT_SCID}`,
    '--timeout=30s',
    '127.0.0.1',
    String(port),
    'https://stepwire.test/',
  ]).child;
  const next = () =>
    new Promise<Received>((resolve, reject) => {
      const q = queue.shift();
      if (q) return resolve(q);
      const t = setTimeout(() => reject(new Error('no datagram from gtlsclient within 20 s')), 20_000);
      waiters.push((r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
  return { next, send: (b, p) => s.send(b, p, '127.0.0.1') };
}

interface OpenedInitial {
  dcid: Uint8Array;
  scid: Uint8Array;
  token: Uint8Array;
  packetNumber: number;
  frames: Frame[];
}

function openInitial(datagram: Uint8Array, keyDcid: Uint8Array): OpenedInitial {
  const { packets, error } = splitCoalescedPackets(datagram, 8);
  expect(error).toBeUndefined();
  const first = packets[0]!;
  const info = parseProtectedHeader(first, 8);
  expect(info.type).toBe('Initial');
  const results = [nobleQuicCrypto, nodeQuicCrypto].map((qc) =>
    openPacket(initialKeys(qc, keyDcid).client, first, info.pnOffset, -1),
  );
  expect(results[0]).toBeDefined();
  expect(toHex(results[0]!.payload)).toBe(toHex(results[1]?.payload ?? new Uint8Array()));
  return {
    dcid: info.dcid,
    scid: info.scid,
    token: info.token,
    packetNumber: results[0]!.packetNumber,
    frames: decodeFrames(results[0]!.payload),
  };
}

/** The quic_transport_parameters extension (0x39) of a ClientHello (RFC 8446 §4.1.2, RFC 9001 §8.2). */
function transportParametersOf(clientHello: Uint8Array): Uint8Array {
  const v = new DataView(clientHello.buffer, clientHello.byteOffset, clientHello.byteLength);
  expect(clientHello[0]).toBe(1); // client_hello
  let at = 4 + 2 + 32; // type, length, legacy_version, random
  at += 1 + clientHello[at]!; // legacy_session_id
  at += 2 + v.getUint16(at); // cipher_suites
  at += 1 + clientHello[at]!; // legacy_compression_methods
  const end = at + 2 + v.getUint16(at);
  at += 2;
  while (at < end) {
    const type = v.getUint16(at);
    const len = v.getUint16(at + 2);
    if (type === 0x39) return clientHello.subarray(at + 4, at + 4 + len);
    at += 4 + len;
  }
  throw new Error('no quic_transport_parameters extension');
}

describe('ngtcp2 client (gtlsclient) against our codecs and protection', () => {
  it('its Initial decrypts and decodes; our Retry is accepted and our token comes back', async () => {
    const peer = await start();
    const first = await peer.next();
    const initial = openInitial(first.datagram, fromHex(CLIENT_DCID));
    expect(toHex(initial.dcid)).toBe(CLIENT_DCID);
    expect(toHex(initial.scid)).toBe(CLIENT_SCID);
    expect(first.datagram.length).toBeGreaterThanOrEqual(1200); // RFC 9000 §14.1
    expect(firstIllegalFrame(initial.frames, 'Initial')).toBeUndefined();
    const crypto = initial.frames.filter((f) => f.type === 'CRYPTO');
    expect(crypto.length).toBeGreaterThan(0);
    const hello = new Uint8Array(crypto.reduce((n, f) => Math.max(n, f.offset + f.data.length), 0));
    for (const f of crypto) hello.set(f.data, f.offset);
    const tp = decodeTransportParameters(transportParametersOf(hello));
    // RFC 9000 §7.3: the client's initial_source_connection_id equals its SCID.
    expect(toHex(tp.initial_source_connection_id ?? new Uint8Array())).toBe(CLIENT_SCID);
    expect(checkTransportParametersFrom(tp, 'client')).toBeUndefined();

    // RFC 9000 §17.2.5: a Retry with our connection ID and token, tagged per RFC 9001 §5.8.
    const retryScid = fromHex('5e5e5e5e5e5e5e5e');
    const token = utf8('stepwire-retry-token');
    const body = encodeRetry({
      type: 'Retry',
      version: 1,
      unusedBits: 0,
      dcid: initial.scid,
      scid: retryScid,
      retryToken: token,
      retryIntegrityTag: new Uint8Array(16),
    }).subarray(0, -16);
    // First with a wrong tag (tagged for another ODCID): the client must discard it (§5.8)
    // and retransmit its Initial unchanged.
    peer.send(sealRetry(nodeQuicCrypto.crypto, fromHex('0000000000000000'), body), first.port);
    const retransmission = parseProtectedHeader((await peer.next()).datagram, 8);
    expect(toHex(retransmission.dcid)).toBe(CLIENT_DCID);
    expect(retransmission.token).toHaveLength(0);
    peer.send(sealRetry(nodeQuicCrypto.crypto, initial.dcid, body), first.port);
    // The client's next Initial uses our SCID as its DCID (so its keys change) and echoes the token.
    for (;;) {
      const d = await peer.next();
      const info = parseProtectedHeader(d.datagram, 8);
      if (bytesEqual(info.dcid, initial.dcid)) continue; // a retransmission sent before our Retry arrived
      expect(toHex(info.dcid)).toBe(toHex(retryScid));
      expect(toHex(info.token)).toBe(toHex(token));
      const again = openInitial(d.datagram, retryScid);
      expect(again.frames.some((f) => f.type === 'CRYPTO')).toBe(true);
      break;
    }
  });

  it('a Version Negotiation packet we build makes the client give up on version 1 (RFC 9000 §6.2)', async () => {
    const peer = await start();
    const first = await peer.next();
    const initial = openInitial(first.datagram, fromHex(CLIENT_DCID));
    // Versions the client does not support: it must stop (no compatible version), so no
    // further Initial with the same DCID arrives after its exit.
    const vn = encodeVersionNegotiation({
      type: 'VersionNegotiation',
      unusedBits: 0x40,
      dcid: initial.scid,
      scid: initial.dcid,
      supportedVersions: [0x1a2a3a4a, 0xff00001d],
    });
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    // Control: without Version Negotiation the client keeps trying.
    await new Promise((r) => setTimeout(r, 700));
    expect(child?.exitCode).toBeNull();
    peer.send(vn, first.port);
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000)),
    ]);
    expect(code).not.toBe('timeout');
  });
});

describe('ngtcp2 server (gtlsserver) against our codecs and protection', () => {
  const site = gtlsSite('stepwire-quic-ngtcp2-');
  afterAll(() => site.remove());

  /** Our client Initial: the RFC 9001 A.2 ClientHello in a CRYPTO frame, padded to 1200 bytes. */
  function clientInitial(dcid: Uint8Array, token: Uint8Array): Uint8Array {
    // A.2's transport parameters name 8394c8f03e515708 as initial_source_connection_id, so that is our SCID (RFC 9000 §7.3).
    const scid = fromHex('8394c8f03e515708');
    const crypto = decodeFrames(fromHex(A.CLIENT_CRYPTO_FRAME));
    const header = {
      type: 'Initial' as const,
      version: 1,
      dcid,
      scid,
      token,
      reservedBits: 0,
      packetNumberLength: 1 as const,
      truncatedPacketNumber: 0,
    };
    const bare = encodeFrames(crypto);
    // RFC 9000 §14.1: a server drops a client Initial in a datagram below 1200 bytes.
    const overhead = encodePacketHeader(header, 1000).length + 16;
    const payload = concatBytes(bare, new Uint8Array(1200 - overhead - bare.length));
    return sealPacket(initialKeys(nodeQuicCrypto, dcid).client, header, 0, payload);
  }

  async function server(extra: string[]): Promise<{ exchange: (d: Uint8Array) => Promise<Uint8Array> }> {
    const s = await loopbackSocket();
    const { port } = await startGtlsServer(site, { args: extra });
    const exchange = (d: Uint8Array) =>
      new Promise<Uint8Array>((resolve, reject) => {
        // Resend until the server is up and answers (bounded: 100 tries, 20 s).
        let tries = 0;
        const timer = setInterval(() => {
          if (++tries > 100) {
            clearInterval(timer);
            reject(new Error('gtlsserver did not answer'));
          } else s.send(d, port, '127.0.0.1');
        }, 200);
        s.send(d, port, '127.0.0.1');
        s.once('message', (msg) => {
          clearInterval(timer);
          resolve(new Uint8Array(msg));
        });
      });
    return { exchange };
  }

  it('answers our Initial with packets that split, unprotect and decode (ACK, CRYPTO or CONNECTION_CLOSE)', async () => {
    const { exchange } = await server([]);
    const dcid = fromHex('d1d2d3d4d5d6d7d8');
    const initial = clientInitial(dcid, new Uint8Array(0));
    expect(initial.length).toBe(1200);
    const reply = await exchange(initial);
    const { packets, error } = splitCoalescedPackets(reply, 8);
    expect(error).toBeUndefined();
    const first = packets[0]!;
    const info = parseProtectedHeader(first, 8);
    expect(info.type).toBe('Initial');
    expect(toHex(info.dcid)).toBe('8394c8f03e515708');
    const opened = [nobleQuicCrypto, nodeQuicCrypto].map((qc) =>
      openPacket(initialKeys(qc, dcid).server, first, info.pnOffset, -1),
    );
    expect(opened[0]).toBeDefined();
    expect(toHex(opened[0]!.payload)).toBe(toHex(opened[1]?.payload ?? new Uint8Array()));
    const frames = decodeFrames(opened[0]!.payload);
    expect(firstIllegalFrame(frames, 'Initial')).toBeUndefined();
    expect(frames.some((f) => f.type === 'CRYPTO' || f.type === 'CONNECTION_CLOSE')).toBe(true);
    // Whatever follows in the datagram (Handshake packets) splits at its Length fields.
    for (const p of packets.slice(1)) expect(parseProtectedHeader(p, 8).type).toBe('Handshake');
  });

  it('with address validation (-V) answers with a Retry whose integrity tag we verify', async () => {
    const { exchange } = await server(['-V']);
    const dcid = fromHex('e1e2e3e4e5e6e7e8');
    const reply = await exchange(clientInitial(dcid, new Uint8Array(0)));
    const retry = decodeRetry(reply);
    expect(toHex(retry.dcid)).toBe('8394c8f03e515708');
    expect(retry.retryToken.length).toBeGreaterThan(0);
    expect(verifyRetry(nodeQuicCrypto.crypto, dcid, reply)).toBe(true);
    expect(verifyRetry(nobleQuicCrypto.crypto, dcid, reply)).toBe(true);
    expect(verifyRetry(nodeQuicCrypto.crypto, fromHex('0000000000000000'), reply)).toBe(false);
  });
});
