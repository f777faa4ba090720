import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePcap, encodePcap } from '@stepwire/link';
import { Sim } from '@stepwire/sim';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/commands/index.ts';
import { runTrace, traceCapture } from '../src/commands/trace.ts';
import { packetFacts } from '../src/views/facts.ts';
import { renderHtml } from '../src/views/html.ts';

const dir = mkdtempSync(join(tmpdir(), 'stepwire-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A capture of our own: ping, a TCP connection carrying an HTTP request, its close. */
async function ourCapture(): Promise<Uint8Array> {
  const sim = new Sim({ pcapInMemory: true, seed: 3, impairments: { delay: 5 } });
  sim.b.tcp.createServer((s) => s.pipe(s)).listen(80);
  const c = sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 });
  c.resume();
  c.on('connect', () => {
    c.write('GET / HTTP/1.1\r\nHost: stepwire.test\r\n\r\n');
    c.end();
  });
  await sim.run(new Promise((r) => c.on('close', r)));
  await sim.run(sim.a.host.ping(sim.b.ipv6));
  const bytes = sim.pcap!.bytes();
  sim.close();
  return bytes;
}

let capture: Uint8Array;
beforeAll(async () => {
  capture = await ourCapture();
});

describe('packet facts', () => {
  it('find the flow, TCP sequence space and, for a corrupted segment, the byte our decoder refuses', () => {
    const file = decodePcap(capture);
    const withData = file.records.map((r) => packetFacts(r.data)).find((f) => f.tcp && f.tcp.len > 0)!;
    expect(withData.src).toBe('198.18.0.1');
    expect(withData.flow).toMatch(/^tcp 198\.18\.0\.1:\d+ 198\.18\.0\.2:80$/);
    expect(withData.refusal).toBeUndefined();
    const bad = file.records[2]!.data.slice();
    bad[20 + 14]! ^= 0xff;
    expect(packetFacts(bad).refusal).toEqual({
      layer: 'TCP',
      offset: 36,
      field: 'checksum',
      reason: 'bad checksum',
    });
    expect(packetFacts(bad, { verifyChecksums: false }).refusal).toBeUndefined();
  });
});

describe('stepwire trace', () => {
  it('decodes a capture into the ladder; a refused packet shows offset and reason and the rest still decode', () => {
    const file = decodePcap(capture);
    // Corrupt one byte of the third packet's TCP header: its checksum no longer verifies.
    const bad = file.records[2]!.data.slice();
    expect(bad.length).toBeGreaterThan(40);
    bad[20 + 14]! ^= 0xff;
    file.records.splice(3, 0, { ...file.records[2]!, data: bad });
    const path = join(dir, 'ours.pcap');
    writeFileSync(path, encodePcap(file));
    const lines: string[] = [];
    runTrace(path, {}, (s) => lines.push(s));
    expect(lines[1]).toMatch(/IPv4 198\.18\.0\.1→198\.18\.0\.2 TCP \d+→80 SYN/);
    expect(lines[4]).toMatch(/TCP refused at byte 36 \(checksum\)/);
    expect(lines[5]).not.toMatch(/refused/);
    expect(lines.some((l) => /IPv6 fd00:5757::2→fd00:5757::1 ICMP.*echo-reply/.test(l))).toBe(true);
    expect(lines).toContain(`${file.records.length} packets, 1 refused by our decoders`);
    expect(lines.at(-1)).toMatch(/every refusal is a checksum/);
  });

  it('reads Ethernet captures taken by dumpcap (Wireshark) on the kernel loopback', async () => {
    const path = join(dir, 'lo.pcap');
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const cap: ChildProcess = spawn(
      'dumpcap',
      ['-q', '-i', 'lo', '-f', `tcp port ${port}`, '-a', 'duration:6', '-P', '-w', path],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    cap.stderr!.on('data', (d: Buffer) => (err += d));
    // dumpcap says "Capturing on" once it listens.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 15_000);
      cap.stderr!.on('data', () => {
        if (!/Capturing on/.test(err)) return;
        clearTimeout(t);
        // "Capturing on" comes a moment before the capture filter is in place.
        setTimeout(resolve, 1000);
      });
    });
    const c = net.connect(port, '127.0.0.1');
    c.on('connect', () => c.end('hello'));
    c.resume();
    await new Promise((r) => c.on('close', r));
    await new Promise((r) => cap.on('exit', r));
    server.close();
    // The kernel fills loopback checksums in after the capture point (offload): ignore them, as Wireshark does.
    const { file, packets } = traceCapture(readFileSync(path), { verifyChecksums: false });
    expect(file.linkType).toBe(1);
    expect(packets.length).toBeGreaterThanOrEqual(6);
    expect(packets[0]!.summary).toMatch(
      new RegExp(
        `^Internet Protocol version 4, 127\\.0\\.0\\.1 → 127\\.0\\.0\\.1 · Transmission Control Protocol, \\d+ → ${port}, SYN `,
      ),
    );
    expect(packets.some((p) => p.summary.includes('refused'))).toBe(false);
  });
});

describe('HTML view in headless Chromium', () => {
  it('loads without console errors, shows a clicked packet and field, and filters by layer', async () => {
    const file = decodePcap(capture);
    const t0 = file.records[0]!.tsSec * 1000 + file.records[0]!.tsFrac / 1000;
    const html = renderHtml({
      title: 'stepwire test capture',
      packets: file.records.map((r) => ({ t: r.tsSec * 1000 + r.tsFrac / 1000 - t0, bytes: r.data })),
      notes: [{ t: 0, host: 'B', text: 'tcp LISTEN → SYN-RECEIVED', layer: 'tcp' }],
      hosts: { '198.18.0.1': 'A', '198.18.0.2': 'B', 'fd00:5757::1': 'A', 'fd00:5757::2': 'B' },
    });
    const page = join(dir, 'view.html');
    writeFileSync(page, html);
    expect(file.records.length).toBeGreaterThan(8);
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const tab = await browser.newPage();
      const problems: string[] = [];
      tab.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      tab.on('pageerror', (e) => problems.push(e.message));
      await tab.goto(`file://${page}`);
      expect(await tab.locator('tr.packet').count()).toBe(file.records.length);
      await tab.locator('tr.packet').nth(0).click();
      await expect.poll(() => tab.locator('#tree').textContent()).toContain('Source Port');
      await tab.locator('.field', { hasText: 'Destination Port' }).first().click();
      // The two bytes of the destination port are highlighted in the hex pane.
      expect(await tab.locator('#hex .hl').count()).toBe(2);
      // Hide TCP: every TCP segment goes, the ICMPv6 echo stays.
      await tab.locator('input[data-layer="tcp"]').uncheck();
      const visible = await tab.locator('tr.packet:not(.hidden)').allInnerTexts();
      expect(visible.length).toBeGreaterThan(0);
      expect(visible.every((t) => t.includes('ICMP'))).toBe(true);
      expect(await tab.locator('#charts .chart').count()).toBe(1);
      const artifacts = join(import.meta.dirname, '../../../build/test-artifacts');
      mkdirSync(artifacts, { recursive: true });
      await tab.locator('input[data-layer="tcp"]').check();
      await tab.screenshot({ path: join(artifacts, 'trace-view.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('stepwire demo --html', () => {
  it('writes the scenario as a page whose packets carry their bytes and whose notes carry the TLS steps', async () => {
    const path = join(dir, 'hrr.html');
    let out = '';
    const code = await runCli(['demo', 'tls-hrr', '--html', path], {
      out: (t) => (out += t),
      err: (t) => (out += t),
    });
    expect(code).toBe(0);
    expect(out).toContain(`HTML view written to ${path}`);
    const page = readFileSync(path, 'utf8');
    const json = /<script type="application\/json" id="data">(.*?)<\/script>/s.exec(page)![1]!;
    const data = JSON.parse(json) as {
      packets: { from: string; to: string; hex: string; layers: { layer: string }[] }[];
      notes: { text: string; layer?: string }[];
      tcpState: { host: string; srcPort: number; dstPort: number; cwnd: number; rto: number | null }[];
    };
    expect(data.packets.length).toBeGreaterThan(10);
    expect(data.packets[0]).toMatchObject({ from: 'A', to: 'B' });
    expect(data.packets.some((p) => p.layers.some((l) => l.layer === 'tls'))).toBe(true);
    expect(data.notes.some((n) => n.layer === 'tls' && n.text.includes('HelloRetryRequest'))).toBe(true);
    // The key schedule's steps for the TLS panel, by name only (RFC 8446 §7.1), in order.
    const steps = data.notes.filter((n) => n.text.includes('key schedule')).map((n) => n.text);
    expect(steps.some((t) => t.includes('CLIENT_HANDSHAKE_TRAFFIC_SECRET'))).toBe(true);
    expect(steps.some((t) => t.includes('SERVER_TRAFFIC_SECRET_0'))).toBe(true);
    expect(page).not.toMatch(/SECRET(_0)? [0-9a-f]{32}/); // names only: no key-log line, no secret
    // The senders' own state for the TCP timeline: cwnd (and RTO) from each side as it sent.
    expect(new Set(data.tcpState.map((q) => q.host))).toEqual(new Set(['A', 'B']));
    expect(data.tcpState.every((q) => q.cwnd > 0 && q.dstPort > 0)).toBe(true);
    expect(data.tcpState.some((q) => q.srcPort === 443 || q.dstPort === 443)).toBe(true);
  });
});
