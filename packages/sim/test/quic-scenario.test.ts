/**
 * `stepwire demo quic` (scenarios/quic.ts): the ladder shows what its `watch` lines promise —
 * Initial, Handshake and 1-RTT packets, HANDSHAKE_DONE, the HTTP/3 exchange, and 0-RTT packets
 * carrying the request on the resumed connection before B has answered. Wireshark is the
 * independent oracle for the capture: with the run's key log tshark decrypts every QUIC
 * packet (0-RTT and 1-RTT included), finds the HTTP/3 frames and no malformed packet.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsharkFields, tsharkProblems } from '../../../test/support/tshark.ts';
import { findScenario, runScenario, type ScenarioRun } from '../src/scenarios/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-quic-demo-'));
const pcap = join(dir, 'quic.pcap');
const keylog = join(dir, 'quic.keys');
const lines: string[] = [];
const keys: string[] = [];
let run: ScenarioRun;

beforeAll(async () => {
  const s = findScenario('quic');
  if (!s) throw new Error('the quic scenario is not registered');
  run = await runScenario(s, { seed: 5, print: (l) => lines.push(l), pcap, keylog: (l) => keys.push(l) });
  writeFileSync(keylog, `${keys.join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The lines of the part of the run under the heading that starts with `title`. */
function part(title: string): string[] {
  const start = lines.findIndex((l) => l.trimStart().startsWith(`— ${title}`));
  expect(start, title).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && l.trimStart().startsWith('— '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}
const index = (ls: string[], re: RegExp) => ls.findIndex((l) => re.test(l));

describe('demo quic: the ladder', () => {
  it('every result is ✓', () => {
    expect(run.ok, run.results.join('\n')).toBe(true);
    expect(run.results.join('\n')).toMatch(/0-RTT accepted/);
  });

  it('first connection: Initial with the ClientHello, Initial + Handshake back, 1-RTT, HANDSHAKE_DONE, the GET and its 200', () => {
    const first = part('first connection');
    const initial = index(first, /A +· quic → Initial pn=0 .*CRYPTO off=0/);
    // RFC 9000 §14.1: the client's Initial datagram is padded to at least 1200 bytes.
    expect(first[initial + 1]).toMatch(/A→B .*UDP \d+→443 len=1200/);
    const serverInitial = index(first, /B +· quic → Initial pn=\d+ .*CRYPTO/);
    const serverHandshake = index(first, /B +· quic → Handshake pn=0 .*CRYPTO/);
    expect(serverInitial).toBeGreaterThan(initial);
    expect(serverHandshake).toBeGreaterThan(serverInitial);
    expect(index(first, /A +· quic → Handshake pn=0 .*CRYPTO/)).toBeGreaterThan(serverHandshake);
    expect(index(first, /A +· quic handshaking → established/)).toBeGreaterThan(serverHandshake);
    // RFC 9001 §4.1.2: the server confirms the handshake with HANDSHAKE_DONE in 1-RTT.
    const done = index(first, /B +· quic → 1-RTT .*HANDSHAKE_DONE/);
    expect(done).toBeGreaterThan(serverHandshake);
    expect(index(first, /A +· quic handshake confirmed/)).toBeGreaterThan(done);
    expect(index(first, /A +· h3 → HEADERS .*stream=0/)).toBeGreaterThan(initial);
    expect(index(first, /B +· h3 → DATA .*stream=0/)).toBeGreaterThan(0);
    expect(first.some((l) => /quic → 0-RTT/.test(l))).toBe(false);
    expect(first.some((l) => /A +· quic → 1-RTT .*CONNECTION_CLOSE/.test(l))).toBe(true);
  });

  it('second connection: the request leaves in a 0-RTT packet before anything comes back from B', () => {
    const second = part('second connection');
    const zeroRtt = index(second, /A +· quic → 0-RTT pn=0 .*STREAM s=0 .*FIN/);
    const firstFromB = index(second, /B→A /);
    expect(zeroRtt).toBeGreaterThanOrEqual(0);
    expect(firstFromB).toBeGreaterThan(zeroRtt);
    // The ticket's PSK: no Certificate this time, so B's Handshake flight is short.
    expect(index(second, /B +· quic → Handshake pn=0 .*CRYPTO off=0 len=(\d{1,3}),/)).toBeGreaterThan(
      zeroRtt,
    );
    expect(index(second, /B +· quic → 1-RTT .*HANDSHAKE_DONE/)).toBeGreaterThan(zeroRtt);
  });
});

describe('demo quic: the capture, as tshark sees it with the key log', () => {
  it('decrypts 0-RTT and 1-RTT packets, finds the HTTP/3 HEADERS and DATA, and no malformed packet', () => {
    const keyOpt = ['-o', `tls.keylog_file:${keylog}`];
    expect(tsharkProblems(pcap, keyOpt)).toEqual([]);
    const rows = tsharkFields(pcap, ['frame.number', 'quic.long.packet_type', 'quic.frame_type'], {
      filter: 'quic',
      extra: keyOpt,
    });
    // Long header type 1 is 0-RTT (RFC 9000 §17.2); its STREAM frames (0x08-0x0f) were decrypted.
    const zeroRtt = rows.filter((r) => r['quic.long.packet_type']?.split(',').includes('1'));
    expect(zeroRtt.length).toBeGreaterThan(0);
    expect(
      zeroRtt.some((r) => r['quic.frame_type']?.split(',').some((t) => Number(t) >= 8 && Number(t) <= 15)),
    ).toBe(true);
    // HANDSHAKE_DONE (0x1e) in a decrypted 1-RTT packet, on each connection.
    expect(rows.filter((r) => r['quic.frame_type']?.split(',').includes('30')).length).toBe(2);
    const h3 = tsharkFields(pcap, ['http3.frame_type'], { filter: 'http3', extra: keyOpt });
    const types = h3.flatMap((r) => r['http3.frame_type']?.split(',') ?? []);
    expect(types).toContain('1'); // HEADERS
    expect(types).toContain('0'); // DATA
    expect(types).toContain('4'); // SETTINGS
  });
});
