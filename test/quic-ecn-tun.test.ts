/**
 * QUIC ECN (RFC 9000 §13.4, RFC 9002 §7.1) against a real peer: our HTTP/3 service (the one
 * `serve --tun` runs, with its `ecn` option) on our UDP/IP over a TUN device, and ngtcp2's
 * gtlsclient (Debian ngtcp2-client) in the namespace on the kernel's side. node:dgram cannot
 * read or set the IP ECN field; our UDP can, and Linux plus ngtcp2 both carry and count the
 * marks, so each end's ACK_ECN counts are an independent oracle of the other's marking.
 * tshark, given the key log, reads the decrypted ACK_ECN frames from the session's pcap.
 *
 * The namespace ('sw-quic-ecn-<pid>') is made by each TunSession and removed on close and again in
 * afterAll; gtlsclient is killed by its PID if it outlives its timeout.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { impair, netnsDown } from '@stepwire/link';
import {
  createQuicTlsClient,
  flushSoon,
  Http3Client,
  h3TransportOverQuic,
  QuicDriver,
  QuicEndpoint,
} from '@stepwire/quic';
import { certificateVerifier } from '@stepwire/tls';
import type { UdpSocket } from '@stepwire/udp';
import { Prng, type TraceEvent } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dualStackSocket, type H3Service, h3OverDatagrams } from '../packages/cli/src/services/h3.ts';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { type RunningService, SERVICES } from '../packages/cli/src/tun/services.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { selfSignedCertificate } from './support/peer-process.ts';
import { tsharkFields } from './support/tshark.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-quic-ecn-${process.pid}`;
const PORT = 443;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-quic-ecn-'));
const children = new Set<ChildProcess>();
const identity = ephemeralServeIdentity();

beforeAll(() => {
  requireRootAndPrograms(['ip', 'gtlsclient', 'gtlsserver', 'ss', 'tshark']);
  netnsDown(NS);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  netnsDown(NS);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A program in the namespace, asynchronously: our stack runs on this process's event loop. */
function inNs(args: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'ip',
      ['netns', 'exec', NS, ...args],
      { timeout: timeoutMs, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        children.delete(child);
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
      },
    );
    children.add(child);
  });
}

interface Run {
  events: TraceEvent[];
  /** Our congestion window after each packet we received, with the time it arrived. */
  cwnd: { t: number; cwnd: number }[];
  pcap: string;
  keylog: string;
  ceMarkedByLink: number;
}

/** Our h3 service with `ecn: true` on a fresh TUN session; gtlsclient downloads /bytes/<size>. */
async function download(
  name: string,
  size: number,
  impairment?: { ceMark: number; delay: number },
  family: 'v4' | 'v6' = 'v4',
): Promise<Run> {
  const pcap = path.join(dir, `${name}.pcap`);
  const keylog = path.join(dir, `${name}.keys`);
  const keylines: string[] = [];
  let linkCounters: (() => number) | undefined;
  const session = TunSession.open({
    netns: NS,
    replace: true,
    pcap,
    ...(impairment
      ? {
          // Our packets only: the link marks some of them CE on their way to the kernel
          // (RFC 3168 §5), and delays them so a round trip lasts at least `delay` ms.
          wrapLink: (link, clock) => {
            const l = impair(link, { seed: 9002, ceMark: impairment.ceMark, delay: impairment.delay }, clock);
            linkCounters = () => l.counters.get('ce-marked');
            return l;
          },
        }
      : {}),
  });
  const events: TraceEvent[] = [];
  const cwnd: { t: number; cwnd: number }[] = [];
  let svc: H3Service | undefined;
  session.trace.on((e) => {
    if (e.layer !== 'quic') return;
    events.push(e);
    // An incoming packet is traced before its frames are processed: the window read here is
    // the one the previous packet left.
    const conn = svc?.driver.endpoint.connections[0];
    if (conn && e.dir === 'in') cwnd.push({ t: e.t, cwnd: Number(conn.stats().cwnd) });
  });
  // Without impairments: the h3 row of the TUN services table, as `serve --tun` starts it
  // (its ECN is on there). With them: the same service built here, to read its window.
  let running: RunningService | undefined;
  let v4: UdpSocket | undefined;
  let v6: UdpSocket | undefined;
  try {
    if (!impairment) {
      const row = SERVICES.find((x) => x.name === 'h3');
      if (!row) throw new Error('no h3 row in the TUN services table');
      running = row.start({
        host: session.host,
        udp: session.udp,
        tcp: session.tcp,
        tls: { identity, keylog: (l) => keylines.push(l), trace: session.trace, traceHost: 'h3' },
      });
    } else {
      v4 = session.udp.createSocket('udp4');
      v6 = session.udp.createSocket('udp6');
      v4.bindSync(PORT);
      v6.bindSync(PORT);
      svc = h3OverDatagrams({
        socket: dualStackSocket(v4, v6),
        clock: session.clock,
        port: PORT,
        identity,
        ecn: true,
        keylog: (l) => keylines.push(l),
        trace: session.trace,
        traceHost: 'h3',
      });
    }
    const dl = fs.mkdtempSync(path.join(dir, `${name}-dl-`));
    const g = await inNs([
      'gtlsclient',
      '--exit-on-all-streams-close',
      '--timeout=10s',
      '--no-quic-dump',
      '--no-http-dump',
      `--download=${dl}`,
      session.ours[family],
      String(PORT),
      `https://${family === 'v6' ? `[${session.ours.v6}]` : session.ours.v4}:${PORT}/bytes/${size}`,
    ]);
    expect(g.code, g.out.slice(-2000)).toBe(0);
    const body = fs.readFileSync(path.join(dl, String(size)));
    expect(body.equals(patternChunk(0, size))).toBe(true);
  } finally {
    running?.close();
    svc?.close();
    v4?.close();
    v6?.close();
    await session.close();
  }
  fs.writeFileSync(keylog, `${keylines.join('\n')}\n`);
  return { events, cwnd, pcap, keylog, ceMarkedByLink: linkCounters?.() ?? 0 };
}

/** The ECN counts (ECT(0)/ECT(1)/CE) of every ACK frame in a trace summary. */
function ackEcn(summary: string): { ect0: number; ect1: number; ce: number }[] {
  return [...summary.matchAll(/ ecn=(\d+)\/(\d+)\/(\d+)/g)].map((m) => ({
    ect0: Number(m[1]),
    ect1: Number(m[2]),
    ce: Number(m[3]),
  }));
}

/** gtlsserver in the namespace on the kernel's address; resolves once its UDP port is bound. */
async function startGtlsserver(address: string, port: number, htdocs: string, key: string, cert: string) {
  const child = spawn(
    'ip',
    ['netns', 'exec', NS, 'gtlsserver', '--quiet', '-d', htdocs, address, String(port), key, cert],
    {
      stdio: 'ignore',
    },
  );
  children.add(child);
  child.once('close', () => children.delete(child));
  // Bounded: 50 looks at the namespace's UDP sockets, 100 ms apart.
  for (let i = 0; i < 50; i++) {
    const ss = await inNs(['ss', '-Huln', `sport = :${port}`], 5000);
    if (ss.out.includes(`:${port}`)) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`gtlsserver did not bind ${address}:${port}`);
}

/** One QUIC packet as tshark decoded it, with its source address and IP ECN field. */
type Packet = Record<string, string> & { src: string; ecn: string };

/** The pcap's QUIC packets with their IP ECN field and decrypted ACK_ECN counts, per direction. */
function tsharkQuic(
  r: Pick<Run, 'pcap' | 'keylog'>,
  ourAddress = '198.18.0.2',
  port = PORT,
): { fromUs: Packet[]; toUs: Packet[] } {
  const rows = tsharkFields(
    r.pcap,
    [
      'ip.src',
      'ipv6.src',
      'ip.dsfield.ecn',
      'ipv6.tclass.ecn',
      'quic.frame_type',
      'quic.ack.ect0_count',
      'quic.ack.ect1_count',
      'quic.ack.ecn_ce_count',
    ],
    {
      filter: 'quic && !icmp && !icmpv6',
      extra: ['-o', `tls.keylog_file:${r.keylog}`, '-d', `udp.port==${port},quic`],
    },
  );
  // `src` and `ecn` from whichever IP header the packet has (RFC 3168 §5, RFC 8200 §7).
  const packets = rows.map((x) => ({
    ...x,
    src: x['ip.src'] || x['ipv6.src'] || '',
    ecn: x['ip.dsfield.ecn'] || x['ipv6.tclass.ecn'] || '',
  }));
  return {
    fromUs: packets.filter((x) => x.src === ourAddress),
    toUs: packets.filter((x) => x.src !== ourAddress),
  };
}

/** A QUIC packet with a CRYPTO (0x06) or STREAM (0x08-0x0f) frame, by tshark's frame types. */
function carriesData(x: Record<string, string>): boolean {
  return (x['quic.frame_type'] ?? '')
    .split(',')
    .some((t) => t === '6' || (Number(t) >= 8 && Number(t) <= 15));
}

const max = (xs: string[]): number => Math.max(0, ...xs.flatMap((x) => x.split(',')).map(Number));

describe('QUIC ECN with gtlsclient over TUN (RFC 9000 §13.4)', () => {
  it.each([
    ['v4', '198.18.0.2'],
    ['v6', 'fd00:5757::2'],
  ] as const)(
    '%s: its packets arrive ECT(0) and our ACKs count them; ours go out ECT(0) and its ACK_ECN validates them',
    async (family, ours4or6) => {
      const r = await download(`plain-${family}`, 300_000, undefined, family);
      const ours = r.events.filter((e) => e.host === 'h3');

      // §13.4.1: what arrived ECT(0) is counted into our ACK frames (the ACK tracker's counts).
      const sent = ours.filter((e) => e.dir === 'out').flatMap((e) => ackEcn(e.summary));
      expect(sent.length).toBeGreaterThan(0);
      expect(Math.max(...sent.map((c) => c.ect0))).toBeGreaterThan(0);
      expect(sent.every((c) => c.ect1 === 0 && c.ce === 0)).toBe(true);

      // §13.4.2: gtlsclient's ACK_ECN counts our ECT(0) packets, and the validator trusts them.
      const got = ours.filter((e) => e.dir === 'in').flatMap((e) => ackEcn(e.summary));
      expect(Math.max(0, ...got.map((c) => c.ect0))).toBeGreaterThan(0);
      const transitions = ours.filter((e) => e.summary.startsWith('ECN ')).map((e) => e.summary);
      expect(transitions).toContain('ECN testing → capable');
      expect(transitions.some((s) => s.includes('failed'))).toBe(false);

      // The oracle: tshark decrypts both directions. The kernel hands ngtcp2's ECT(0) packets
      // to us (IP ECN field 2) and ours to it; each side's ACK_ECN frames count the other's.
      const { fromUs, toUs } = tsharkQuic(r, ours4or6);
      expect(toUs.length).toBeGreaterThan(0);
      // Every packet of ngtcp2's carrying CRYPTO or STREAM data is ECT(0). (It sends its path
      // MTU probes, PING + PADDING, and an ACK-only first Initial Not-ECT.)
      expect(toUs.filter(carriesData).length).toBeGreaterThan(0);
      expect(toUs.filter(carriesData).every((x) => x.ecn === '2')).toBe(true);
      // After validation every packet of ours is ECT(0) (RFC 9000 A.4 'capable').
      expect(fromUs.filter((x) => x.ecn === '2').length).toBeGreaterThan(fromUs.length / 2);
      expect(max(fromUs.map((x) => x['quic.ack.ect0_count'] ?? ''))).toBeGreaterThan(0);
      expect(max(toUs.map((x) => x['quic.ack.ect0_count'] ?? ''))).toBeGreaterThan(0);
      expect(max(toUs.map((x) => x['quic.ack.ecn_ce_count'] ?? ''))).toBe(0);
    },
  );

  it('CE marks on our packets come back in its ACK_ECN, and our window is cut at most once per round trip (RFC 9002 §7.1)', async () => {
    const DELAY = 20;
    const r = await download('ce', 1_000_000, { ceMark: 0.05, delay: DELAY });
    expect(r.ceMarkedByLink).toBeGreaterThan(0);
    const ours = r.events.filter((e) => e.host === 'h3');
    const transitions = ours.filter((e) => e.summary.startsWith('ECN ')).map((e) => e.summary);
    expect(transitions).toContain('ECN testing → capable');
    expect(transitions.some((s) => s.includes('failed'))).toBe(false);

    // tshark: our packets left CE-marked (field 3) and gtlsclient's ACK_ECN reported CE.
    const { fromUs, toUs } = tsharkQuic(r);
    expect(fromUs.some((x) => x.ecn === '3')).toBe(true);
    const peerCe = max(toUs.map((x) => x['quic.ack.ecn_ce_count'] ?? ''));
    expect(peerCe).toBeGreaterThan(0);
    expect(peerCe).toBeLessThanOrEqual(r.ceMarkedByLink);

    // Our window fell after CE reports; a cut needs an ACK of a packet sent after the last
    // cut (B.5 InCongestionRecovery), and every packet of ours is delayed DELAY ms, so two
    // cuts are at least DELAY apart. The cut is read at the next packet in and belongs to
    // the one before it.
    const cuts: number[] = [];
    for (let i = 1; i < r.cwnd.length; i++) {
      const prev = r.cwnd[i - 1];
      const cur = r.cwnd[i];
      if (prev && cur && cur.cwnd < prev.cwnd) cuts.push(prev.t);
    }
    expect(cuts.length).toBeGreaterThan(0);
    for (let i = 1; i < cuts.length; i++) {
      // Less 2 ms: the link's delay is a Node timer, which keeps whole milliseconds of a
      // loop time taken at the start of each turn, so it may fire up to ~1 ms early by the
      // clock the trace reads.
      expect((cuts[i] ?? 0) - (cuts[i - 1] ?? 0)).toBeGreaterThanOrEqual(DELAY - 2);
    }
    // CE counts rose on more ACKs than the window was cut: marks within one round count once.
    const ceSeen = ours
      .filter((e) => e.dir === 'in')
      .flatMap((e) => ackEcn(e.summary))
      .map((c) => c.ce);
    let rises = 0;
    for (let i = 1; i < ceSeen.length; i++) if ((ceSeen[i] ?? 0) > (ceSeen[i - 1] ?? 0)) rises++;
    expect(rises).toBeGreaterThan(cuts.length);
    const gaps = cuts.slice(1).map((t, i) => t - (cuts[i] ?? 0));
    console.log(
      `quic-tun ECN us -> gtlsclient: ${r.ceMarkedByLink} CE marks, peer ACK_ECN CE ${peerCe}, ${rises} ACKs raising CE, ${cuts.length} window cuts, shortest gap ${Math.min(...gaps).toFixed(1)} ms (delay ${DELAY} ms), ${fromUs.length} packets out`,
    );
  });

  it('our client to gtlsserver: both ends mark ECT(0) and validate; CE marks on its packets come back in our ACK_ECN', async () => {
    const htdocs = path.join(dir, 'htdocs');
    fs.mkdirSync(htdocs, { recursive: true });
    const body = new Prng(13).bytes(300_000);
    fs.writeFileSync(path.join(htdocs, 'blob.bin'), body);
    const { key, cert } = selfSignedCertificate(dir);
    const pcap = path.join(dir, 'client.pcap');
    const keylog = path.join(dir, 'client.keys');
    const keylines: string[] = [];
    let ceMarked = () => 0;
    const session = TunSession.open({
      netns: NS,
      replace: true,
      pcap,
      // Its packets only, on their way from the kernel to us (after the pcap): some arrive CE.
      wrapLink: (link, clock) => {
        const l = impair(link, { seed: 3168, receive: { ceMark: 0.05 } }, clock);
        ceMarked = () => l.counters.get('ce-marked');
        return l;
      },
    });
    const events: TraceEvent[] = [];
    session.trace.on((e) => {
      if (e.layer === 'quic') events.push(e);
    });
    const s4 = session.udp.createSocket('udp4');
    const s6 = session.udp.createSocket('udp6');
    s4.bindSync(0);
    s6.bindSync(0);
    const port = 4433;
    let driver: QuicDriver | undefined;
    let server: ChildProcess | undefined;
    try {
      server = await startGtlsserver(session.kernel.v4, port, htdocs, key, cert);
      const clock = session.clock;
      let client: Http3Client | undefined;
      const endpoint = new QuicEndpoint({
        tlsEpoch: Date.now() - clock.now(),
        trace: session.trace,
        host: 'client',
      });
      const d = new QuicDriver(endpoint, dualStackSocket(s4, s6), clock, {
        onEvent: (_c, e) => client?.handle(e, clock.now()),
      });
      driver = d;
      const conn = d.connect(
        { address: session.kernel.v4, port },
        {
          transport: { ecn: true },
          tls: (transportParameters) =>
            createQuicTlsClient({
              serverName: 'stepwire.test',
              verifier: certificateVerifier({ ca: fs.readFileSync(cert, 'utf8'), hostname: 'stepwire.test' }),
              alpnProtocols: ['h3'],
              transportParameters,
              keyLog: (l) => keylines.push(l),
            }),
        },
      );
      const h3 = new Http3Client(
        h3TransportOverQuic(
          conn,
          () => clock.now(),
          flushSoon(() => d.flush()),
        ),
        { authority: `stepwire.test:${port}` },
      );
      client = h3;
      await h3.ready();
      const res = await h3.request({ ':path': '/blob.bin' });
      expect(res.status).toBe(200);
      expect(Buffer.from(res.body).equals(Buffer.from(body))).toBe(true);
      expect(conn.ecnState).toBe('capable');
      h3.close();
      d.flush();
    } finally {
      if (server?.exitCode === null) server.kill('SIGTERM');
      driver?.close();
      s4.close();
      s6.close();
      await session.close();
    }
    fs.writeFileSync(keylog, `${keylines.join('\n')}\n`);
    expect(ceMarked()).toBeGreaterThan(0);

    const ours = events.filter((e) => e.host === 'client');
    const transitions = ours.filter((e) => e.summary.startsWith('ECN ')).map((e) => e.summary);
    expect(transitions).toContain('ECN testing → capable');
    expect(transitions.some((t) => t.includes('failed'))).toBe(false);
    // Our ACKs count what reached our QUIC: ECT(0) as sent, CE where the link marked it.
    const sent = ours.filter((e) => e.dir === 'out').flatMap((e) => ackEcn(e.summary));
    expect(Math.max(0, ...sent.map((c) => c.ect0))).toBeGreaterThan(0);
    const ourCe = Math.max(0, ...sent.map((c) => c.ce));
    expect(ourCe).toBeGreaterThan(0);
    expect(ourCe).toBeLessThanOrEqual(ceMarked());

    // tshark: gtlsserver's data packets reach the device ECT(0) (the pcap is taken before the
    // marking link), ours leave ECT(0); each side's ACK_ECN counts the other's marks, ours CE too.
    const { fromUs, toUs } = tsharkQuic({ pcap, keylog }, session.ours.v4, port);
    expect(toUs.filter(carriesData).length).toBeGreaterThan(0);
    expect(toUs.filter(carriesData).every((x) => x.ecn === '2')).toBe(true);
    expect(fromUs.filter((x) => x.ecn === '2').length).toBeGreaterThan(fromUs.length / 2);
    expect(max(toUs.map((x) => x['quic.ack.ect0_count'] ?? ''))).toBeGreaterThan(0);
    expect(max(fromUs.map((x) => x['quic.ack.ecn_ce_count'] ?? ''))).toBe(ourCe);
    console.log(
      `quic-tun ECN gtlsserver -> us: ${ceMarked()} CE marks, our ACK_ECN CE ${ourCe}, ect0 ${Math.max(...sent.map((c) => c.ect0))}; ${toUs.filter((x) => x.ecn === '2').length}/${toUs.length} of its packets ECT(0), ${fromUs.filter((x) => x.ecn === '2').length}/${fromUs.length} of ours`,
    );
  });
});
