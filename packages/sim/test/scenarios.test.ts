/**
 * Every scenario of `stepwire demo <name>` does what its "what to watch" lines promise: the
 * ladder (packets and notes) shows it, every outcome line is ✓, and the run is the same for
 * the same seed.
 */
import { describe, expect, it } from 'vitest';
import { findScenario, runScenario, SCENARIOS } from '../src/index.ts';

async function ladderOf(name: string, seed = 1): Promise<{ text: string; ok: boolean }> {
  const s = findScenario(name);
  if (!s) throw new Error(`no scenario ${name}`);
  const lines: string[] = [];
  const r = await runScenario(s, { seed, print: (l) => lines.push(l) });
  return { text: lines.join('\n'), ok: r.ok };
}

/** Lines of `text` matching `re`, in order. */
const matching = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l));

describe('scenarios', () => {
  it('each has a unique name, a title and two or three lines of what to watch', () => {
    const names = SCENARIOS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      'tcp-handshake',
      'tcp-sack-loss',
      'tcp-zero-window',
      'syn-flood-cookies',
      'tcp-fastopen',
      'tls-full',
      'tls-hrr',
      'tls-resumption',
      'tls-0rtt',
      'tls-mtls',
      'tls-keyupdate',
      'ping-pmtu',
      'fragmentation',
    ]);
    for (const s of SCENARIOS) {
      expect(s.title).toMatch(/RFC \d+/);
      expect(s.watch.length).toBeGreaterThanOrEqual(2);
      expect(s.watch.length).toBeLessThanOrEqual(3);
    }
  });

  it('tcp-handshake: options in SYN and SYN,ACK, each state change, TIME-WAIT at the active closer', async () => {
    const { text, ok } = await ladderOf('tcp-handshake');
    expect(ok).toBe(true);
    expect(text).toMatch(/A→B .* TCP \d+→7 SYN seq=\d+ win=\d+ mss=1460 ws=\d+ sack ts/);
    expect(text).toMatch(/B→A .* TCP 7→\d+ SYN,ACK seq=\d+ ack=\d+ .*mss=1460 ws=\d+ sack ts/);
    expect(text).toMatch(/A +· tcp SYN-SENT → ESTABLISHED/);
    expect(text).toMatch(/B +· tcp SYN-RECEIVED → ESTABLISHED/);
    expect(text).toMatch(/A→B .* FIN,ACK/);
    expect(text).toMatch(/B→A .* FIN,ACK/);
    expect(text).toMatch(/A +· tcp FIN-WAIT-2 → TIME-WAIT/);
    expect(text).toMatch(/60\.\d+ +A +· tcp TIME-WAIT → CLOSED/);
  });

  it('tcp-sack-loss: SACK blocks after a loss, and only the missing segment sent again', async () => {
    const { text, ok } = await ladderOf('tcp-sack-loss');
    expect(ok).toBe(true);
    expect(text).toMatch(/link dropped: drop\.loss/);
    expect(matching(text, /B→A .* ACK .*sack=\d+-\d+/).length).toBeGreaterThan(0);
    // A retransmission: the same data sequence number sent twice by A.
    const seqs = matching(text, /A→B .* len=\d+/).map((l) => /seq=(\d+)/.exec(l)?.[1]);
    expect(new Set(seqs).size).toBeLessThan(seqs.length);
  });

  it('tcp-zero-window: win=0, a window probe, then the window reopens and the rest flows', async () => {
    const { text, ok } = await ladderOf('tcp-zero-window');
    expect(ok).toBe(true);
    const zero = text.split('\n').findIndex((l) => /B→A .* ACK .*win=0 /.test(l));
    expect(zero).toBeGreaterThan(0);
    const after = text.split('\n').slice(zero);
    // The probe: a segment from A while the window is zero, answered with win=0 again.
    expect(after.join('\n')).toMatch(/A→B .* ACK seq=\d+ [^\n]*\n[^\n]*\n?[^\n]*B→A .* win=0 /);
    const reopen = after.findIndex((l) => /B→A .* win=8192 /.test(l));
    expect(reopen).toBeGreaterThan(0);
    expect(after.slice(reopen).some((l) => /A→B .* len=1448/.test(l))).toBe(true);
  });

  it('syn-flood-cookies: a full SYN queue, then a cookie for A and ESTABLISHED anyway', async () => {
    const { text, ok } = await ladderOf('syn-flood-cookies');
    expect(ok).toBe(true);
    expect(matching(text, /M→B .* TCP 4000\d→80 SYN /)).toHaveLength(6);
    expect(text).toMatch(/syn 4\/4/);
    expect(text).toMatch(/B +· tcp .*cookie/i);
    expect(text).toMatch(/A +· tcp SYN-SENT → ESTABLISHED/);
  });

  it('tcp-fastopen: a cookie request, a cookie, then data in the SYN acknowledged by the SYN,ACK', async () => {
    const { text, ok } = await ladderOf('tcp-fastopen');
    expect(ok).toBe(true);
    expect(text).toMatch(/A→B .* SYN seq=\d+ win=\d+ mss=\d+ .*tfo=req/);
    expect(text).toMatch(/B→A .* SYN,ACK .*tfo=8B/);
    const syn = /A→B .* SYN seq=(\d+) win=\d+ len=9 .*tfo=8B/.exec(text);
    expect(syn).not.toBeNull();
    const ack = (Number(syn?.[1]) + 1 + 9) % 2 ** 32;
    expect(text).toMatch(new RegExp(`B→A .* SYN,ACK seq=\\d+ ack=${ack} `));
  });

  it('tls-full: the whole handshake in order, CONNECTED after one round trip', async () => {
    const { text, ok } = await ladderOf('tls-full');
    expect(ok).toBe(true);
    const msgs = matching(text, /· tls → /).map((l) => /tls → (\w+)/.exec(l)?.[1]);
    expect(msgs.slice(0, 7)).toEqual([
      'ClientHello',
      'ServerHello',
      'EncryptedExtensions',
      'Certificate',
      'CertificateVerify',
      'Finished',
      'Finished',
    ]);
    expect(text).toMatch(/A +· tls WAIT_FINISHED → CONNECTED/);
  });

  it('tls-hrr: HelloRetryRequest for P-256 and a second ClientHello with a P-256 share', async () => {
    const { text, ok } = await ladderOf('tls-hrr');
    expect(ok).toBe(true);
    expect(text).toMatch(/A +· tls → ClientHello .*shares=x25519/);
    expect(text).toMatch(/B +· tls → HelloRetryRequest .*group=secp256r1/);
    expect(text).toMatch(/A +· tls → ClientHello .*shares=secp256r1/);
    expect(text).toMatch(/B +· tls → ServerHello .*group=secp256r1/);
    // The retry costs a round trip (2 × 10 ms) or more compared with tls-full.
    const connected = (t: string) => Number(/(\d+\.\d+) +A +· tls WAIT_FINISHED → CONNECTED/.exec(t)?.[1]);
    const full = await ladderOf('tls-full');
    expect(connected(text) - connected(full.text)).toBeGreaterThanOrEqual(0.02);
  });

  it('tls-resumption: a ticket, then psk on both hellos and no Certificate the second time', async () => {
    const { text, ok } = await ladderOf('tls-resumption');
    expect(ok).toBe(true);
    const second = text.slice(text.indexOf('second connection'));
    expect(text.slice(0, text.indexOf('second connection'))).toMatch(/B +· tls → NewSessionTicket/);
    expect(second).toMatch(/A +· tls → ClientHello .* psk/);
    expect(second).toMatch(/B +· tls → ServerHello .* psk/);
    expect(second).not.toMatch(/tls → Certificate/);
  });

  it('tls-0rtt: psk, EndOfEarlyData, and the request accepted before the handshake ends', async () => {
    const { text, ok } = await ladderOf('tls-0rtt');
    expect(ok).toBe(true);
    const second = text.slice(text.indexOf('second connection'));
    expect(second).toMatch(/A +· tls → ClientHello .* psk/);
    expect(second).toMatch(/A +· tls → EndOfEarlyData[\s\S]*A +· tls → Finished/);
    expect(text).toMatch(/early data accepted=true/);
  });

  it('tls-mtls: CertificateRequest, then the client certificate and its CertificateVerify', async () => {
    const { text, ok } = await ladderOf('tls-mtls');
    expect(ok).toBe(true);
    expect(text).toMatch(/B +· tls → CertificateRequest/);
    expect(text).toMatch(/A +· tls → Certificate 1 cert/);
    expect(text).toMatch(/A +· tls → CertificateVerify/);
    expect(text).toMatch(/client certificate CN=a\.test/);
  });

  it('tls-keyupdate: KeyUpdate requested by A and answered by B', async () => {
    const { text, ok } = await ladderOf('tls-keyupdate');
    expect(ok).toBe(true);
    expect(text).toMatch(
      /A +· tls → KeyUpdate update_requested[\s\S]*B +· tls → KeyUpdate update_not_requested/,
    );
  });

  it('ping-pmtu: fragmentation needed with mtu 1280, Packet Too Big, then fragments', async () => {
    const { text, ok } = await ladderOf('ping-pmtu');
    expect(ok).toBe(true);
    expect(text).toMatch(/router→A +IPv4 198\.18\.0\.254→198\.18\.0\.1 ICMP unreachable code=4 mtu=1280/);
    expect(text).toMatch(/A +· ipv4 path MTU to 198\.18\.0\.2 1500→1280/);
    expect(text).toMatch(/router→A +IPv6 fd00:5757::fe→fd00:5757::1 ICMPv6 packet-too-big mtu=1280/);
    expect(text).toMatch(/router→B +IPv4 198\.18\.0\.1→198\.18\.0\.2 .*frag id=\d+ off=0 MF/);
    expect(text).toMatch(/A→B +IPv6 fd00:5757::1→fd00:5757::2 .*frag id=\d+ off=0 M/);
    expect(text).toMatch(/packet-too-big code 4 from 198\.18\.0\.254/);
  });

  it('fragmentation: three IPv4 and three IPv6 fragments each way, reassembled', async () => {
    const { text, ok } = await ladderOf('fragmentation');
    expect(ok).toBe(true);
    for (const off of [0, 1480, 2960]) expect(text).toMatch(new RegExp(`A→B +IPv4 .* off=${off}`));
    for (const off of [0, 1448, 2896]) expect(text).toMatch(new RegExp(`A→B +IPv6 .* off=${off}`));
    expect(matching(text, /B→A .* frag id=/)).toHaveLength(6);
  });

  it('is deterministic by seed', async () => {
    const a = await ladderOf('tls-full', 3);
    const b = await ladderOf('tls-full', 3);
    const c = await ladderOf('tls-full', 4);
    expect(b.text).toBe(a.text);
    expect(c.text).not.toBe(a.text);
  });
});
