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
      'tcp-simultaneous-open',
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
      'http-keepalive',
      'http-pipelining',
      'http-long-polling',
      'http-sse',
      'websocket',
      'http2-multiplexing',
      'quic',
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

  it('tcp-simultaneous-open: crossing SYNs, SYN-RECEIVED on both sides, crossing FINs through CLOSING', async () => {
    const { text, ok } = await ladderOf('tcp-simultaneous-open');
    expect(ok).toBe(true);
    // RFC 9293 Figure 8: each side sends a bare SYN, then a SYN,ACK for the SYN it received.
    expect(matching(text, /TCP 5000→5000 SYN seq=/)).toHaveLength(2);
    expect(matching(text, /TCP 5000→5000 SYN,ACK /)).toHaveLength(2);
    for (const h of ['A', 'B']) {
      expect(text).toMatch(new RegExp(`${h} +· tcp SYN-SENT → SYN-RECEIVED`));
      expect(text).toMatch(new RegExp(`${h} +· tcp SYN-RECEIVED → ESTABLISHED`));
      // Figure 13: simultaneous close.
      expect(text).toMatch(new RegExp(`${h} +· tcp FIN-WAIT-1 → CLOSING`));
      expect(text).toMatch(new RegExp(`${h} +· tcp CLOSING → TIME-WAIT`));
    }
    expect(text).not.toMatch(/LISTEN/);
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
    // In whole milliseconds: the ladder prints three decimals and 0.06 - 0.04 is not 0.02 in floating point.
    expect(Math.round((connected(text) - connected(full.text)) * 1000)).toBeGreaterThanOrEqual(20);
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

  it('http-keepalive: one handshake, two request/response pairs on one pooled connection, an idle close', async () => {
    const { text, ok } = await ladderOf('http-keepalive');
    expect(ok).toBe(true);
    expect(matching(text, /A→B .* SYN /)).toHaveLength(1);
    // Connection numbers count per process: the one the pool opened is the one both requests use.
    const id = /new connection #(\d+)/.exec(text)?.[1];
    expect(matching(text, new RegExp(`A +· http → GET /(first|second) HTTP/1\\.1 on #${id}$`))).toHaveLength(
      2,
    );
    expect(matching(text, /B +· http → respond 200 OK/)).toHaveLength(2);
    expect(text).toMatch(
      new RegExp(
        `new connection #${id} [\\s\\S]*GET /first[\\s\\S]*reuse connection #${id}\n[\\s\\S]*GET /second`,
      ),
    );
    expect(matching(text, /new connection/)).toHaveLength(1);
    // Both requests and both responses ride the one connection: a single client port.
    const ports = new Set(matching(text, /A→B .* TCP /).map((l) => /TCP (\d+)→80/.exec(l)?.[1]));
    expect(ports.size).toBe(1);
    // Two seconds after the last response the pool closes it: A's next packet is its FIN.
    const lines = text.split('\n');
    const idle = lines.findIndex((l) => /^ +2\.0\d\d +A +· http pool .*idle for 2000 ms, closing/.test(l));
    expect(idle).toBeGreaterThan(0);
    expect(lines.slice(idle).find((l) => /A→B /.test(l))).toMatch(/ FIN,ACK /);
  });

  it('http-pipelining: three requests in one segment, /b and /c answered only after the slow /slow', async () => {
    const { text, ok } = await ladderOf('http-pipelining');
    expect(ok).toBe(true);
    expect(matching(text, /A→B .* SYN /)).toHaveLength(1);
    // One data segment from A carries all three requests (three heads of 44–46 bytes).
    const data = matching(text, /A→B .* len=\d+/);
    expect(data).toHaveLength(1);
    expect(Number(/len=(\d+)/.exec(data[0] ?? '')?.[1])).toBeGreaterThan(120);
    const order = matching(text, /B +· http (process|→ respond)/).map((l) => /http (.*)$/.exec(l)?.[1]);
    expect(order).toEqual([
      'process GET /slow',
      '→ respond 200 OK',
      'process GET /b',
      '→ respond 200 OK',
      'process GET /c',
      '→ respond 200 OK',
    ]);
    // The first response waits 300 ms; the other two leave right behind it.
    const at = (re: RegExp) => Number(new RegExp(`(\\d+\\.\\d+) +${re.source}`).exec(text)?.[1]);
    expect(at(/B +· http process GET \/slow/)).toBeCloseTo(0.015, 3);
    expect(at(/B +· http process GET \/c/)).toBeCloseTo(0.315, 3);
    expect(text).toMatch(/responses in order: slow, b, c/);
  });

  it('http-long-polling: the response leaves at the instant of the publish, and a 204 at the hold timeout', async () => {
    const { text, ok } = await ladderOf('http-long-polling');
    expect(ok).toBe(true);
    const lines = text.split('\n');
    const process1 = lines.findIndex((l) => /B +· http process GET \/poll/.test(l));
    const publish = lines.findIndex((l) => /B +· app publish 'news'/.test(l));
    expect(process1).toBeGreaterThan(0);
    expect(publish).toBeGreaterThan(process1);
    // Between the request's arrival and the publish, B sends nothing but (at most) an ACK.
    const between = lines.slice(process1 + 1, publish).filter((l) => /B→A/.test(l));
    expect(between.every((l) => !/len=/.test(l))).toBe(true);
    const time = (l: string | undefined) => /^ *(\d+\.\d+)/.exec(l ?? '')?.[1];
    expect(time(lines[publish])).toBe('1.500');
    const response = lines.slice(publish).find((l) => /B→A .* len=\d+/.test(l));
    expect(time(response)).toBe('1.500');
    const rest = lines.slice(publish);
    const second = rest.findIndex((l) => /B +· http process GET \/poll/.test(l));
    const noContent = rest.findIndex((l) => /B +· http → respond 204 No Content/.test(l));
    expect(second).toBeGreaterThan(0);
    expect(Number(time(rest[noContent])) - Number(time(rest[second]))).toBeCloseTo(3, 3);
  });

  it('http-sse: events 1–3 on one response, an RST, Last-Event-ID 3 on the retry, events 4–5', async () => {
    const { text, ok } = await ladderOf('http-sse');
    expect(ok).toBe(true);
    expect(matching(text, /A +· http → GET \/events/)).toHaveLength(2);
    expect(matching(text, /B +· http → respond 200 OK/)).toHaveLength(2);
    const cut = text.indexOf('connection cut');
    expect(cut).toBeGreaterThan(0);
    const first = text.slice(0, cut);
    const second = text.slice(cut);
    const ids = (t: string) => matching(t, /B +· sse → id: \d/).map((l) => /id: (\d)/.exec(l)?.[1]);
    expect(ids(first)).toEqual(['1', '2', '3']);
    expect(second).toMatch(/B→A .* RST /);
    expect(second).toMatch(/stream 2, Last-Event-ID '3': from event 4/);
    expect(ids(second)).toEqual(['4', '5']);
    // The client waits the server's retry: 1000 ms after losing the stream before it reconnects.
    const lost = Number(/(\d+\.\d+) +A +· app stream lost/.exec(text)?.[1]);
    const again = Number(/(\d+\.\d+) +A +· http pool .*new connection/.exec(text.slice(cut))?.[1]);
    expect(again - lost).toBeCloseTo(1, 3);
    expect(text).toMatch(/events 1,2,3,4,5 over 2 connections/);
  });

  it('websocket: the 101, masked frames from A only, ping/pong, and the closing handshake with B closing TCP', async () => {
    const { text, ok } = await ladderOf('websocket');
    expect(ok).toBe(true);
    expect(text).toMatch(/B +· http upgrade websocket: stream handed over/);
    expect(text).toMatch(/A +· websocket open: 101 accepted/);
    const fromA = matching(text, /A +· websocket → /);
    const fromB = matching(text, /B +· websocket → /);
    expect(fromA.map((l) => /→ (\w+)/.exec(l)?.[1])).toEqual(['TEXT', 'PING', 'CLOSE']);
    expect(fromB.map((l) => /→ (\w+)/.exec(l)?.[1])).toEqual(['TEXT', 'PONG', 'CLOSE']);
    expect(fromA.every((l) => l.endsWith(' masked'))).toBe(true);
    expect(fromB.some((l) => l.includes('masked'))).toBe(false);
    // B, the server, sends the first FIN once both Close frames have crossed (RFC 6455 §7.1.1).
    const fins = matching(text, /FIN,ACK/);
    expect(fins[0]).toMatch(/B→A/);
    expect(text).toMatch(/echo: hello \| pong 'are you there' \| close 1000 bye/);
  });

  it('http2-multiplexing: streams 1, 3, 5 on one connection, /b and /c interleaved and done before /a', async () => {
    const { text, ok } = await ladderOf('http2-multiplexing');
    expect(ok).toBe(true);
    expect(matching(text, /A→B .* SYN /)).toHaveLength(1);
    expect(text).toMatch(/A +· h2 → SETTINGS[\s\S]*B +· h2 → SETTINGS/);
    expect(matching(text, /A +· h2 → HEADERS/).map((l) => /s=(\d+)/.exec(l)?.[1])).toEqual(['1', '3', '5']);
    // B's DATA frames in the order they were written: 3 and 5 take turns, 1 ends last.
    const data = matching(text, /B +· h2 → DATA/).map((l) =>
      /s=(\d+) .*?(END_STREAM)?$/.exec(l)?.slice(1, 3).join(''),
    );
    expect(data).toEqual(['3', '5', '3END_STREAM', '5END_STREAM', '1END_STREAM']);
    // Every stream walks its own states on each side (RFC 9113 §5.1).
    for (const id of [1, 3, 5]) {
      expect(text).toMatch(
        new RegExp(
          `A +· h2 stream ${id} idle → open[\\s\\S]*A +· h2 stream ${id} half-closed \\(local\\) → closed`,
        ),
      );
      expect(text).toMatch(
        new RegExp(
          `B +· h2 stream ${id} idle → open[\\s\\S]*B +· h2 stream ${id} half-closed \\(remote\\) → closed`,
        ),
      );
    }
    expect(text).toMatch(/B +· h2 → GOAWAY last=5/);
    expect(text).toMatch(/finished in the order \/b, \/c, \/a on one connection/);
  });

  it('is deterministic by seed', async () => {
    const a = await ladderOf('tls-full', 3);
    const b = await ladderOf('tls-full', 3);
    const c = await ladderOf('tls-full', 4);
    expect(b.text).toBe(a.text);
    expect(c.text).not.toBe(a.text);
    // WebSocket masking keys and Sec-WebSocket-Key come from the seed as well.
    const w1 = await ladderOf('websocket', 3);
    const w2 = await ladderOf('websocket', 3);
    expect(w2.text).toBe(w1.text);
  });
});
