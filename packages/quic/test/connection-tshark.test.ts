import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_EPOCH } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import { Prng } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuicConnection } from '../src/connection/connection.ts';
import { parseProtectedHeader } from '../src/packet/header.ts';
import { ipUdp, rawPcap, tsharkFields } from './support/capture.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

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
      tls: quicClientTls(creds.ca.certificatePem, 'h3', { keyLog }),
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
            tls: quicServerTls(creds.leaf, 'h3'),
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
    writeFileSync(file, rawPcap(records));
    writeFileSync(keylog, `${keylogLines.join('\n')}\n`);
    // Nothing malformed, no expert error, no packet left undecrypted.
    const withKeys = ['-o', `tls.keylog_file:${keylog}`];
    const bad = tsharkFields(
      file,
      ['frame.number', '_ws.expert.message'],
      [...withKeys, '-Y', '_ws.malformed || _ws.expert.severity >= 6291456 || quic.decryption_failed'],
    );
    expect(bad).toEqual([]);
    const rows = tsharkFields(
      file,
      ['frame.number', 'quic.long.packet_type', 'quic.frame_type', 'quic.key_phase'],
      withKeys,
    );
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
