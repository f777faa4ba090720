import { appendFileSync, writeFileSync } from 'node:fs';
import { Agent, get as httpGet } from '@stepwire/http';
import { PingError } from '@stepwire/ip';
import {
  findScenario,
  formatLadderLine,
  type LadderLine,
  ladderHeader,
  noteFor,
  runScenario,
  SCENARIOS,
  SIM_EPOCH,
  Sim,
  type SimHost,
  seededCrypto,
  toMermaid,
} from '@stepwire/sim';
import { connect, createServer, pki } from '@stepwire/tls';
import { udpEcho } from '@stepwire/udp';
import { Prng, type TraceEvent } from '@stepwire/wire';
import { UsageError } from '../errors.ts';
import { forbidKernelTrafficOffLoopback } from '../safety.ts';
import { createHttpApp } from '../services/http-app.ts';
import { renderHtml, type TcpSample, type ViewNote, type ViewPacket } from '../views/html.ts';
import { type KeySource, Stepper, terminalKeys } from './step.ts';

export interface DemoOptions {
  seed: number;
  /** Undefined: the tour's clean wire, or the scenario's own. */
  loss?: number;
  mtu?: number;
  pcap?: string;
  /** A pcapng with the run's TLS secrets inside (a Decryption Secrets Block): decrypts alone. */
  pcapng?: string;
  keylog?: string;
  mermaid?: string;
  /** Also write the exchange as a self-contained HTML page. */
  html?: string;
  list?: boolean;
  step?: boolean;
  /** Each ladder line as data instead of printed (set by --step). */
  onLine?: (l: LadderLine) => void;
  /** Every trace event with its fields (set by --html for the TCP timelines). */
  onTrace?: (e: TraceEvent) => void;
}

/**
 * The demo's TLS runs on the simulation's calendar (SIM_EPOCH plus simulated time, also
 * the pcap's timestamps), with randomness drawn from the run's seed: the same seed gives
 * the same certificates' lengths, key shares, randoms and therefore the same ladder.
 * (Never do this outside a simulation.)
 */
const DEMO_EPOCH = SIM_EPOCH;

/**
 * Where TLS secrets go: --keylog FILE (started afresh), else $SSLKEYLOGFILE (appended to,
 * as curl and Node's --tls-keylog do), else nowhere.
 */
function keylogTarget(o: DemoOptions): { path: string; append: boolean } | undefined {
  if (o.keylog) return { path: o.keylog, append: false };
  const env = process.env.SSLKEYLOGFILE;
  return env ? { path: env, append: true } : undefined;
}

function keylogWriter(o: DemoOptions): { write?: (line: string) => void; path?: string } {
  const target = keylogTarget(o);
  if (!target) return {};
  if (!target.append) writeFileSync(target.path, '');
  return { write: (line: string) => appendFileSync(target.path, `${line}\n`), path: target.path };
}

/** What `stepwire demo [scenario]` runs once its options are parsed (--list is answered without loading this module). */
export async function demoAction(
  scenario: string | undefined,
  o: DemoOptions,
  print: (s: string) => void,
): Promise<void> {
  let keys: KeySource | undefined;
  if (o.step) {
    keys = terminalKeys();
    const source = keys;
    o.onLine = new Stepper(print, source, () => {
      source.close();
      process.exit(0);
    }).onLine;
  }
  const page = o.html ? htmlRecorder(o, print) : undefined;
  try {
    if (scenario) await runNamedScenario(scenario, o, print);
    else await runDemo(o, print);
    if (page && o.html) {
      writeFileSync(
        o.html,
        page.render(
          scenario ? `stepwire demo ${scenario} (seed ${o.seed})` : `stepwire demo (seed ${o.seed})`,
        ),
      );
      print(`\nHTML view written to ${o.html}`);
    }
  } finally {
    keys?.close();
  }
}

/**
 * Keep every ladder line (with a copy of its packet) for the HTML page, and still print the
 * ladder as usual (or hand it to --step's stepper).
 */
function htmlRecorder(o: DemoOptions, print: (s: string) => void): { render(title: string): string } {
  const packets: ViewPacket[] = [];
  const notes: ViewNote[] = [];
  const tcpState: TcpSample[] = [];
  // Each segment a host sends carries its sender's cwnd, ssthresh and RTT in the trace.
  let lastT = 0;
  o.onTrace = (e) => {
    const f = e.fields as Record<string, unknown> | undefined;
    // TLS keeps a calendar clock of its own: place its steps at the ladder's current time.
    if (e.layer === 'tls' && typeof f?.keySchedule === 'string') {
      notes.push({
        t: lastT,
        host: e.host,
        text: `tls ${e.summary} (${e.rfc ?? 'RFC 8446 §7.1'})`,
        layer: 'tls',
      });
      return;
    }
    if (e.layer !== 'tcp' || e.dir !== 'out' || typeof f?.cwnd !== 'number') return;
    tcpState.push({
      t: e.t,
      host: e.host,
      srcPort: Number(f.srcPort),
      dstPort: Number(f.dstPort),
      cwnd: f.cwnd,
      // Before the first loss ssthresh is "arbitrarily high" (RFC 5681 §3.1): no line for it.
      ssthresh: typeof f.ssthresh === 'number' && f.ssthresh < 2 ** 30 ? f.ssthresh : null,
      srtt: typeof f.srtt === 'number' ? f.srtt : null,
      rto: typeof f.rto === 'number' ? f.rto : null,
    });
  };
  const inner = o.onLine;
  o.onLine = (l) => {
    lastT = l.t;
    if (l.kind === 'packet' && l.packet)
      packets.push({ t: l.t, bytes: l.packet.slice(), from: l.from, to: l.to });
    else if (l.kind === 'note')
      notes.push({ t: l.t, host: l.host, text: l.text, ...(l.layer ? { layer: l.layer } : {}) });
    if (inner) inner(l);
    else print(formatLadderLine(l));
  };
  return { render: (title) => renderHtml({ title, packets, notes, tcpState }) };
}

export async function runNamedScenario(
  name: string,
  o: DemoOptions,
  print: (s: string) => void,
): Promise<void> {
  const s = findScenario(name);
  if (!s) {
    throw new UsageError(
      `no scenario '${name}'; 'stepwire demo --list' shows them: ${SCENARIOS.map((x) => x.name).join(', ')}`,
    );
  }
  const keylog = keylogWriter(o);
  print(`${s.name}: ${s.title}`);
  print('What to watch:');
  for (const w of s.watch) print(`  • ${w}`);
  print(`A = 198.18.0.1, fd00:5757::1    B = 198.18.0.2, fd00:5757::2    seed ${o.seed}`);
  print('');
  const r = await runScenario(s, {
    seed: o.seed,
    print,
    ...(o.onLine ? { onLine: o.onLine } : {}),
    ...(o.onTrace ? { onTrace: o.onTrace } : {}),
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.pcapng ? { pcapng: o.pcapng } : {}),
    ...(keylog.write ? { keylog: keylog.write } : {}),
    link: {
      ...(o.loss !== undefined ? { loss: o.loss } : {}),
      ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    },
  });
  if (o.mermaid) {
    writeFileSync(o.mermaid, toMermaid(r.net.lines, s.title));
    print(`\nmermaid sequence diagram written to ${o.mermaid}`);
  }
  if (keylog.path)
    print(`\nTLS key log written to ${keylog.path} (Wireshark: Preferences → TLS → (Pre)-Master-Secret log)`);
  if (o.pcap) print(`\npcap written to ${o.pcap}`);
  if (o.pcapng) print(`\npcapng (TLS secrets inside) written to ${o.pcapng}`);
  if (!r.ok) process.exitCode = 1;
}

export async function runDemo(opts: DemoOptions, print: (s: string) => void): Promise<void> {
  forbidKernelTrafficOffLoopback();
  const o = { ...opts, loss: opts.loss ?? 0, mtu: opts.mtu ?? 1500 };
  const lines: LadderLine[] = [];
  const sim = new Sim({
    seed: o.seed,
    mtu: o.mtu,
    impairments: { loss: o.loss, delay: 1 },
    ...(o.pcap ? { pcapPath: o.pcap } : {}),
    ...(o.pcapng ? { pcapngPath: o.pcapng } : {}),
    onLine: (l) => {
      lines.push(l);
      if (o.onLine) o.onLine(l);
      else print(formatLadderLine(l));
    },
  });
  if (o.onTrace) sim.trace.on(o.onTrace);
  sim.trace.on((e) => {
    // Events are emitted as they happen: stamp them with simulated time (TLS keeps a
    // calendar clock of its own for certificate validity).
    const n = noteFor({ ...e, t: sim.clock.now() });
    if (n) {
      lines.push(n);
      if (o.onLine) o.onLine(n);
      else print(formatLadderLine(n));
    }
  });
  const step = (title: string) => print(`\n— ${title}`);
  const { a, b } = sim;
  print(
    `A = ${a.ipv4}, ${a.ipv6}    B = ${b.ipv4}, ${b.ipv6}    wire: mtu ${o.mtu}, loss ${o.loss}, seed ${o.seed}`,
  );
  print(ladderHeader());

  const ping = async (from: SimHost, to: string, size = 56) => {
    try {
      const r = await sim.run(from.host.ping(to, { size, timeoutMs: 1000 }));
      print(
        `        ${from.name}       ✓ ${r.bytes} bytes from ${r.from}: seq=${r.seq} ttl=${r.ttl} rtt=${r.rtt.toFixed(1)} ms`,
      );
    } catch (e) {
      if (!(e instanceof PingError)) throw e;
      print(`        ${from.name}       ✗ ping ${to}: ${e.message}`);
    }
  };

  step('ping over IPv4 (RFC 792) and IPv6 (RFC 4443)');
  await ping(a, b.ipv4);
  await ping(b, a.ipv6);

  step('UDP echo (RFC 768, RFC 862)');
  const echo = udpEcho(b.udp, 7);
  const client = a.udp.createSocket('udp4');
  client.bind(0);
  const exchange = (payload: Buffer, to: string) =>
    sim.run(
      new Promise<Buffer | undefined>((resolve) => {
        const timer = sim.clock.setTimer(sim.clock.now() + 2000, () => resolve(undefined));
        client.once('message', (m) => {
          timer.cancel();
          resolve(m);
        });
        client.send(payload, 7, to);
      }),
    );
  const hello = Buffer.from('hello, stepwire');
  const got = await exchange(hello, b.ipv4);
  print(`        A       ${got?.equals(hello) ? `✓ echoed '${got.toString()}'` : '✗ no echo (lost)'}`);

  step(`a 4000-byte datagram, fragmented at MTU ${o.mtu} (RFC 791 §2.3) and reassembled`);
  const big = Buffer.alloc(4000, 0).map((_, i) => i & 0xff) as Buffer;
  const back = await exchange(Buffer.from(big), b.ipv4);
  print(`        A       ${back?.equals(big) ? '✓ 4000 bytes echoed intact' : '✗ datagram lost'}`);

  client.close();
  echo.close();

  step(
    'TCP (RFC 9293): handshake, an HTTP request and its response, the close — our HTTP/1.1 client and server',
  );
  const app = createHttpApp();
  const server = b.tcp.createServer((socket) => app.emit('connection', socket));
  server.listen(80);
  const agent = new Agent({
    clock: sim.clock,
    connect: (origin) => a.tcp.connect({ host: origin.hostname, port: origin.port }),
  });
  try {
    const res = await sim.run(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpGet(
          {
            host: b.ipv4,
            port: 80,
            path: '/',
            headers: { host: 'stepwire.test', connection: 'close' },
            agent,
          },
          (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (c: string) => (body += c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
      }),
    );
    print(`        A       ✓ HTTP ${res.status}: ${res.body.trim()}`);
  } catch (e) {
    print(`        A       ✗ HTTP request failed: ${(e as Error).message}`);
  }
  // Let both ends finish the close (FIN, ACK, TIME-WAIT) so the ladder shows it all.
  await sim.run(new Promise<void>((r) => sim.clock.setTimer(sim.clock.now() + 5_000, r)));
  server.close();

  step('TLS 1.3 (RFC 8446) over that TCP: the handshake, then HTTPS — our client, our server');
  const keylogOut = keylogWriter(o);
  const tlsPrng = new Prng(o.seed ^ 0x7715);
  const provider = seededCrypto(tlsPrng);
  const now = () => DEMO_EPOCH + sim.clock.now();
  const { ca, leaf } = pki.createStepwireCredentials(new Date(DEMO_EPOCH - 3600_000), { keyType: 'ed25519' });
  // The secrets also go into the pcapng's Decryption Secrets Blocks, ahead of the packets they decrypt.
  const ng = sim.pcapng;
  const userKeylog = keylogOut.write;
  const keylog =
    ng || userKeylog
      ? (line: string) => {
          ng?.keylog(line);
          userKeylog?.(line);
        }
      : undefined;
  const tls = createServer({
    cert: leaf.certificatePem,
    key: leaf.privateKeyPem,
    ALPNProtocols: ['http/1.1'],
    provider,
    ticketKey: tlsPrng.bytes(32),
    trace: sim.trace,
    hostName: 'B',
    now,
    ...(keylog ? { keylog } : {}),
  });
  tls.on('secureConnection', (s) => app.emit('connection', s));
  const tcp443 = b.tcp.createServer((socket) => tls.emit('connection', socket));
  tcp443.listen(443);
  try {
    const res = await sim.run(
      new Promise<{ status: number; body: string; alpn?: string }>((resolve, reject) => {
        // Our HTTP/1.1 client over our TLS client over our TCP: the agent's connections are TLS sockets.
        const tlsAgent = new Agent({
          clock: sim.clock,
          connect: () =>
            connect({
              socket: a.tcp.connect({ host: b.ipv4, port: 443 }),
              servername: 'stepwire.test',
              ca: ca.certificatePem,
              ALPNProtocols: ['http/1.1'],
              provider,
              trace: sim.trace,
              hostName: 'A',
              now,
              ...(keylog ? { keylog } : {}),
            }),
        });
        const req = httpGet(
          {
            host: b.ipv4,
            port: 443,
            path: '/',
            headers: { host: 'stepwire.test', connection: 'close' },
            agent: tlsAgent,
          },
          (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (c: string) => (body += c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
      }),
    );
    print(`        A       ✓ HTTPS ${res.status} over TLS 1.3: ${res.body.trim()}`);
  } catch (e) {
    print(`        A       ✗ HTTPS request failed: ${(e as Error).message}`);
  }
  await sim.run(new Promise<void>((r) => sim.clock.setTimer(sim.clock.now() + 5_000, r)));
  tcp443.close();
  sim.close();
  if (o.mermaid) {
    writeFileSync(o.mermaid, toMermaid(lines, 'stepwire demo'));
    print(`\nmermaid sequence diagram written to ${o.mermaid}`);
  }
  if (keylogOut.path)
    print(
      `\nTLS key log written to ${keylogOut.path} (Wireshark: Preferences → TLS → (Pre)-Master-Secret log)`,
    );
  if (o.pcap) print(`\npcap written to ${o.pcap}`);
  if (o.pcapng) print(`\npcapng (TLS secrets inside) written to ${o.pcapng}`);
}
