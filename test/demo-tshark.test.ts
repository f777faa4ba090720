/**
 * The demo as Wireshark sees it: its pcap decodes cleanly, and with the demo's key log
 * tshark decrypts the TLS 1.3 session and finds the HTTP exchange inside — an independent
 * check of our record protection and of every secret our key log names.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../packages/cli/src/commands/demo.ts';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-demo-'));
const pcap = join(dir, 'demo.pcap');
const keylog = join(dir, 'demo.keys');
const lines: string[] = [];

beforeAll(async () => {
  await runDemo({ seed: 3, loss: 0, mtu: 1500, pcap, keylog }, (s) => lines.push(s));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stepwire demo --pcap --keylog', () => {
  it('completes every step', () => {
    const out = lines.join('\n');
    expect(out).toMatch(/✓ HTTPS 200 over TLS 1\.3/);
    expect(out).not.toMatch(/✗/);
  });

  it('writes a key log with the four TLS 1.3 traffic secrets of the session', () => {
    const labels = readFileSync(keylog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0]);
    for (const label of [
      'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
      'SERVER_HANDSHAKE_TRAFFIC_SECRET',
      'CLIENT_TRAFFIC_SECRET_0',
      'SERVER_TRAFFIC_SECRET_0',
    ]) {
      expect(labels).toContain(label);
    }
  });

  it('decodes in tshark with nothing malformed and no bad checksum', () => {
    expect(tsharkProblems(pcap, ['-o', `tls.keylog_file:${keylog}`])).toEqual([]);
  });

  it('lets tshark decrypt the TLS session and read the HTTP request and response inside', () => {
    const rows = tsharkFields(
      pcap,
      ['tcp.port', 'tls.handshake.type', 'http.request.method', 'http.response.code'],
      {
        filter: 'tcp.port == 443 && (http || tls.handshake)',
        extra: ['-o', `tls.keylog_file:${keylog}`],
      },
    );
    const handshake = rows.flatMap((r) => r['tls.handshake.type']!.split(',').filter((x) => x !== ''));
    // ClientHello, ServerHello, EncryptedExtensions, Certificate, CertificateVerify, Finished x2, NewSessionTicket:
    // the encrypted ones are visible only because the key log is right.
    expect(handshake).toEqual(['1', '2', '8', '11', '15', '20', '20', '4']);
    expect(rows.map((r) => r['http.request.method']).filter((x) => x)).toEqual(['GET']);
    expect(rows.map((r) => r['http.response.code']).filter((x) => x)).toEqual(['200']);
  });
});
