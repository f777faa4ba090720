/**
 * `stepwire demo quic` as a person runs it, with --html, --pcap and --keylog: the command
 * exits 0 with every result ✓, the HTML view holds the QUIC notes of the ladder (0-RTT
 * included), and tshark decrypts the capture with the key log the command wrote, finding
 * no malformed packet. (The ladder itself is checked in packages/sim/test/quic-scenario.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const dir = mkdtempSync(join(tmpdir(), 'sw-quic-demo-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stepwire demo quic --html --pcap --keylog', () => {
  it('writes a page with the QUIC ladder and a capture tshark decrypts cleanly', async () => {
    const [html, pcap, keylog] = ['quic.html', 'quic.pcap', 'quic.keys'].map((f) => join(dir, f)) as [
      string,
      string,
      string,
    ];
    const r = await new Promise<{ code: number; out: string }>((done) =>
      execFile(
        process.execPath,
        [
          join(root, 'packages/cli/bin/stepwire.js'),
          'demo',
          'quic',
          '--html',
          html,
          '--pcap',
          pcap,
          '--keylog',
          keylog,
        ],
        { cwd: root, timeout: 60_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) =>
          done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.out).toMatch(/✓ HTTP\/3 200, 0-RTT accepted/);
    expect(r.out).not.toMatch(/✗/);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/quic → 0-RTT pn=0/);
    expect(page).toMatch(/HANDSHAKE_DONE/);
    const keyOpt = ['-o', `tls.keylog_file:${keylog}`];
    expect(tsharkProblems(pcap, keyOpt)).toEqual([]);
    // Every datagram of the capture is QUIC that tshark recognised.
    const all = tsharkFields(pcap, ['frame.number']);
    const quic = tsharkFields(pcap, ['frame.number'], { filter: 'quic', extra: keyOpt });
    expect(quic.length).toBe(all.length);
    const h3 = tsharkFields(pcap, ['http3.frame_type'], { filter: 'http3', extra: keyOpt });
    const headers = h3.flatMap((row) => row['http3.frame_type']?.split(',') ?? []).filter((t) => t === '1');
    // Request and response on the first connection, the response on the second: tshark
    // decrypts the 0-RTT packet but does not hand 0-RTT stream data to its HTTP/3 dissector.
    expect(headers.length).toBe(3);
    const early = tsharkFields(pcap, ['quic.stream.stream_id', 'quic.stream.fin'], {
      filter: 'quic.long.packet_type == 1',
      extra: keyOpt,
    });
    // The request's stream 0 (with FIN) is in a decrypted 0-RTT packet (RFC 9001 §4.6.1).
    expect(early.some((row) => row['quic.stream.stream_id']?.split(',').includes('0'))).toBe(true);
  });
});
