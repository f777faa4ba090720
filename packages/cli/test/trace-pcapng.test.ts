import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePcapng, pcapngPackets } from '@stepwire/link';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/commands/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'stepwire-pcapng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (out += t) });
  return { code, out };
}

/** tshark's fields, one row per frame, with no key log: only what the file itself holds. */
function tshark(file: string, filter: string, fields: string[]): string[][] {
  const out = execFileSync(
    '/usr/bin/tshark',
    ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])],
    {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SSLKEYLOGFILE: '' },
    },
  );
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

describe('stepwire demo --pcapng: one file that tshark decrypts alone', () => {
  it('tls-full: the encrypted handshake shows only thanks to the secrets block', async () => {
    const ng = join(dir, 'tls-full.pcapng');
    const plain = join(dir, 'tls-full.pcap');
    const r = await cli(['demo', 'tls-full', '--pcapng', ng, '--pcap', plain]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`pcapng (TLS secrets inside) written to ${ng}`);
    const { packets, keylog } = pcapngPackets(decodePcapng(readFileSync(ng)));
    expect(packets.length).toBeGreaterThan(10);
    // Each secret once: the handshake and application secrets of client and server, and the exporter.
    expect(new Set(keylog).size).toBe(keylog.length);
    expect(keylog.map((l) => l.split(' ')[0]).sort()).toEqual([
      'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
      'CLIENT_TRAFFIC_SECRET_0',
      'EXPORTER_SECRET',
      'SERVER_HANDSHAKE_TRAFFIC_SECRET',
      'SERVER_TRAFFIC_SECRET_0',
    ]);
    // Finished (20), EncryptedExtensions (8), Certificate (11), CertificateVerify (15) are encrypted in TLS 1.3.
    const types = tshark(ng, 'tls.handshake.type == 20', ['tls.handshake.type']).map((row) => row[0]);
    expect(types).toEqual(['8,11,15,20', '20']);
    // The same run as a plain pcap (no key log given): tshark sees no encrypted handshake message.
    expect(tshark(plain, 'tls.handshake.type == 20', ['tls.handshake.type'])).toEqual([]);
  }, 60_000);

  it('the tour: HTTPS GET / and its 200 decrypted from the pcapng alone', async () => {
    const ng = join(dir, 'tour.pcapng');
    const r = await cli(['demo', '--pcapng', ng]);
    expect(r.code).toBe(0);
    const rows = tshark(ng, 'http && tcp.port == 443', [
      'http.request.method',
      'http.request.uri',
      'http.response.code',
    ]);
    expect(rows).toEqual([
      ['GET', '/', ''],
      ['', '', '200'],
    ]);
  }, 60_000);
});
