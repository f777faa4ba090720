import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_EPOCH } from '@stepwire/sim';
import { certificateSigner, certificateVerifier, pki } from '@stepwire/tls';
import { encodeUdp } from '@stepwire/udp';
import { concatBytes, internetChecksum, Prng } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuicConnection } from '../src/connection/connection.ts';
import { parseProtectedHeader } from '../src/packet/header.ts';
import { createQuicTlsClient, createQuicTlsServer } from '../src/tls/handshake.ts';

/**
 * Wireshark as the oracle for whole connections: two of our connections (with our TLS in
 * QUIC mode) handshake, carry streams both ways, update keys and close; every datagram goes
 * into a pcap and the TLS secrets into a key log. tshark must decrypt every packet of every
 * level (Initial from the DCID, Handshake and 1-RTT from the key log, through the key
 * update) and find nothing malformed, and see the frames we sent.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-quic-conn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});

const CLIENT = { addr: '198.18.0.1', port: 50000 };
const SERVER = { addr: '198.18.0.2', port: 443 };

/** IPv4 (RFC 791) + UDP around one datagram, for a LINKTYPE_RAW pcap. */
function ipUdp(payload: Uint8Array, fromClient: boolean): Uint8Array {
  const [src, dst] = fromClient ? [CLIENT, SERVER] : [SERVER, CLIENT];
  const udp = encodeUdp({ srcPort: src.port, dstPort: dst.port, payload }, { src: src.addr, dst: dst.addr });
  const ip = new Uint8Array(20);
  ip[0] = 0x45;
  ip[2] = (20 + udp.length) >> 8;
  ip[3] = (20 + udp.length) & 0xff;
  ip[8] = 64;
  ip[9] = 17;
  ip.set(src.addr.split('.').map(Number), 12);
  ip.set(dst.addr.split('.').map(Number), 16);
  const sum = internetChecksum(ip);
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  return concatBytes(ip, udp);
}

function pcap(records: { at: number; bytes: Uint8Array }[]): Uint8Array {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(101, 20); // LINKTYPE_RAW
  const parts: Buffer[] = [g];
  for (const r of records) {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(Math.floor(r.at / 1000), 0);
    h.writeUInt32LE(Math.floor((r.at % 1000) * 1000), 4);
    h.writeUInt32LE(r.bytes.length, 8);
    h.writeUInt32LE(r.bytes.length, 12);
    parts.push(h, Buffer.from(r.bytes));
  }
  return Buffer.concat(parts);
}

function tshark(file: string, keylog: string, fields: string[], filter?: string): string[][] {
  const out = execFileSync(
    'tshark',
    [
      '-r',
      file,
      '-o',
      'quic.udp.port:443',
      '-o',
      `tls.keylog_file:${keylog}`,
      ...(filter ? ['-Y', filter] : []),
      '-T',
      'fields',
      '-E',
      'separator=/t',
      '-E',
      'aggregator=,',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

describe('tshark decrypts and dissects a whole connection of ours', () => {
  it('handshake, streams both ways, a key update and a close: every packet decrypted, nothing malformed', () => {
    const prng = new Prng(31);
    const random = (n: number) => prng.bytes(n);
    const keylogLines: string[] = [];
    const keyLog = (line: string) => keylogLines.push(line);
    const client = new QuicConnection({
      role: 'client',
      now: 0,
      random,
      tlsEpoch: SIM_EPOCH,
      tls: (tp) =>
        createQuicTlsClient({
          serverName: 'stepwire.test',
          verifier: certificateVerifier({ ca: creds.ca.certificatePem }),
          alpnProtocols: ['h3'],
          transportParameters: tp,
          keyLog,
        }),
    });
    let server: QuicConnection | undefined;
    const records: { at: number; bytes: Uint8Array }[] = [];
    let now = 0;
    let updated = false;
    let echoed = 0;
    const body = new Prng(32).bytes(30_000);
    for (let round = 0; round < 400 && !(client.isDrained && server?.isDrained); round++) {
      for (let d = client.pollTransmit(now); d; d = client.pollTransmit(now)) {
        records.push({ at: now, bytes: ipUdp(d, true) });
        if (!server) {
          const h = parseProtectedHeader(d, 8);
          server = new QuicConnection({
            role: 'server',
            now,
            random,
            tlsEpoch: SIM_EPOCH,
            server: { originalDcid: h.dcid, initialDcid: h.dcid, clientScid: h.scid },
            tls: (tp) =>
              createQuicTlsServer({
                signer: certificateSigner(creds.leaf),
                alpnProtocols: ['h3'],
                transportParameters: tp,
              }),
          });
        }
        server.handle(d, now + 5);
      }
      now += 5;
      if (server) {
        for (let d = server.pollTransmit(now); d; d = server.pollTransmit(now)) {
          records.push({ at: now, bytes: ipUdp(d, false) });
          client.handle(d, now + 5);
        }
        for (let e = server.pollEvent(); e; e = server.pollEvent()) {
          if (e.type === 'stream-data' && e.id % 4 === 0) server.write(e.id, e.data, e.fin);
          if (e.type === 'connected') server.write(server.openStream('uni'), Uint8Array.of(0, 4, 0), false);
        }
      }
      now += 5;
      for (let e = client.pollEvent(); e; e = client.pollEvent()) {
        if (e.type === 'connected') {
          client.write(client.openStream('bidi'), body, true);
          client.write(client.openStream('uni'), Uint8Array.of(0, 4, 0), false);
        }
        if (e.type === 'stream-data' && e.id === 0) {
          echoed += e.data.length;
          if (!updated && echoed > 10_000) updated = client.initiateKeyUpdate(now);
          if (e.fin) client.close(now, 0x100, 'done');
        }
      }
      for (const c of [client, server]) {
        const t = c?.pollTimeout();
        if (c && t !== undefined && t <= now) c.handleTimeout(now);
      }
    }
    expect(updated).toBe(true);
    expect(echoed).toBe(body.length);
    expect(client.isDrained).toBe(true);
    const file = join(dir, 'conn.pcap');
    const keylog = join(dir, 'keylog.txt');
    writeFileSync(file, pcap(records));
    writeFileSync(keylog, `${keylogLines.join('\n')}\n`);
    // Nothing malformed, no expert error, no packet left undecrypted.
    const bad = tshark(
      file,
      keylog,
      ['frame.number', '_ws.expert.message'],
      '_ws.malformed || _ws.expert.severity >= 6291456 || quic.decryption_failed',
    );
    expect(bad).toEqual([]);
    const rows = tshark(file, keylog, [
      'frame.number',
      'quic.long.packet_type',
      'quic.frame_type',
      'quic.key_phase',
    ]);
    expect(rows.length).toBe(records.length);
    const frameTypes = new Set(rows.flatMap((r) => (r[2] ?? '').split(',')).filter((x) => x !== ''));
    // CRYPTO, ACK, STREAM (8..15), NEW_CONNECTION_ID, HANDSHAKE_DONE, CONNECTION_CLOSE (app, 0x1d).
    for (const t of ['6', '2', '24', '30', '29']) expect(frameTypes).toContain(t);
    expect([...frameTypes].some((t) => Number(t) >= 8 && Number(t) <= 15)).toBe(true);
    // Both key phases appear in 1-RTT packets, and tshark decrypted those after the update too.
    const phases = new Set(
      rows.map((r) => r[3]).filter((x) => x === '0' || x === '1' || x === 'True' || x === 'False'),
    );
    expect(phases.size).toBe(2);
  });
});
