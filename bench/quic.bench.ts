/**
 * QUIC packet protection (RFC 9001 §5): protect + unprotect of a 1200-byte 1-RTT packet
 * per second, with each QUIC crypto configuration ('noble': @noble AEAD and header
 * protection; 'node': node:crypto for both), against node:crypto's raw AEAD sealing and
 * opening the same payload with the same key and nonce pattern — so the ratio shows what
 * header protection, nonce construction and our plumbing cost on top of the AEAD alone.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair } from 'node:stream';
import tls from 'node:tls';
import {
  createQuicTlsClient,
  createQuicTlsServer,
  derivePacketKeys,
  nobleQuicCrypto,
  nodeQuicCrypto,
  openPacket,
  packetNonce,
  parseProtectedHeader,
  type QuicCipherSuite,
  type QuicCrypto,
  QuicDriver,
  QuicEndpoint,
  type ShortHeader,
  sealPacket,
} from '@stepwire/quic';
import { createNetwork } from '@stepwire/sim';
import { certificateSigner, certificateVerifier, NamedGroup, nodeCrypto, pki } from '@stepwire/tls';
import { RealClock } from '@stepwire/wire';
import { h3OverDatagrams } from '../packages/cli/src/services/h3.ts';
import { connectH3 } from '../packages/cli/src/services/h3-client.ts';
import { patternChunk } from '../packages/cli/src/services/http-app.ts';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';
import { selfSignedCertificate } from '../test/support/peer-process.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const PACKET = 1200;
const DCID = new Uint8Array(8).fill(0x5a);
/** 1 (first byte) + 8 (DCID) + 4 (packet number) header bytes, 16 tag bytes. */
const HEADER = 1 + DCID.length + 4;
const PAYLOAD = PACKET - HEADER - 16;
const MEASURE_MS = 2000;
const SLICES = 10;

const SUITES: [QuicCipherSuite, 'aes-128-gcm' | 'chacha20-poly1305'][] = [
  ['TLS_AES_128_GCM_SHA256', 'aes-128-gcm'],
  ['TLS_CHACHA20_POLY1305_SHA256', 'chacha20-poly1305'],
];

function oursOp(qc: QuicCrypto, suite: QuicCipherSuite): () => void {
  const secret = new Uint8Array(32).fill(7);
  const tx = derivePacketKeys(qc, suite, secret);
  const rx = derivePacketKeys(qc, suite, secret);
  const payload = new Uint8Array(PAYLOAD).map((_, i) => i & 0xff);
  let pn = 0;
  return () => {
    pn++;
    // A 4-byte packet number (its low 32 bits) keeps every packet exactly 1200 bytes.
    const truncated = pn % 2 ** 32;
    const header: ShortHeader = {
      type: '1-RTT',
      dcid: DCID,
      spinBit: false,
      reservedBits: 0,
      keyPhase: false,
      packetNumberLength: 4,
      truncatedPacketNumber: truncated,
    };
    const packet = sealPacket(tx, header, pn, payload);
    const info = parseProtectedHeader(packet, DCID.length);
    const opened = openPacket(rx, packet, info.pnOffset, pn - 1);
    if (opened === undefined || packet.length !== PACKET) throw new Error('bench packet did not round-trip');
  };
}

/** node:crypto's AEAD alone: seal and open the same payload with the packet's AAD. */
function rawAeadOp(alg: 'aes-128-gcm' | 'chacha20-poly1305'): () => void {
  const key = Buffer.alloc(alg === 'aes-128-gcm' ? 16 : 32, 7);
  const iv = new Uint8Array(12).fill(3);
  const aad = Buffer.alloc(HEADER, 1);
  const payload = Buffer.from(new Uint8Array(PAYLOAD).map((_, i) => i & 0xff));
  const opts = { authTagLength: 16 };
  let pn = 0;
  return () => {
    pn++;
    const nonce = packetNonce(iv, pn);
    const c = createCipheriv(alg as 'aes-128-gcm', key, nonce, opts);
    c.setAAD(aad, { plaintextLength: payload.length });
    const ct = Buffer.concat([c.update(payload), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv(alg as 'aes-128-gcm', key, nonce, opts);
    d.setAuthTag(tag);
    d.setAAD(aad, { plaintextLength: ct.length });
    const pt = Buffer.concat([d.update(ct), d.final()]);
    if (pt.length !== payload.length) throw new Error('raw AEAD did not round-trip');
  };
}

/** Operations per second of wall time and per CPU-second of this process, over about `ms`. */
function rates(fn: () => void, ms: number): { wall: number; cpu: number } {
  for (let i = 0; i < 16; i++) fn();
  let calls = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
  }
  const c = process.cpuUsage(c0);
  return { wall: calls / ((performance.now() - t0) / 1000), cpu: calls / ((c.user + c.system) / 1e6) };
}

/**
 * Rates of two operations measured in alternating slices, so that load drifting on a
 * shared machine (other processes come and go within a second) hits both sides alike; and
 * per CPU-second, which a descheduled slice does not skew at all.
 */
function interleavedRates(
  ours: () => void,
  peer: () => void,
): { ours: number; peer: number; oursCpu: number; peerCpu: number } {
  const total = { ours: 0, peer: 0, oursCpu: 0, peerCpu: 0 };
  for (let i = 0; i < SLICES; i++) {
    const p = rates(peer, MEASURE_MS / SLICES);
    const o = rates(ours, MEASURE_MS / SLICES);
    total.peer += p.wall;
    total.ours += o.wall;
    total.peerCpu += p.cpu;
    total.oursCpu += o.cpu;
  }
  return {
    ours: total.ours / SLICES,
    peer: total.peer / SLICES,
    oursCpu: total.oursCpu / SLICES,
    peerCpu: total.peerCpu / SLICES,
  };
}

export const quicBenchmarks: Benchmark[] = [
  {
    name: 'quic packet protection',
    async run() {
      const out: BenchResult[] = [];
      for (const [suite, alg] of SUITES) {
        for (const qc of [nobleQuicCrypto, nodeQuicCrypto]) {
          const { ours, peer, oursCpu, peerCpu } = interleavedRates(oursOp(qc, suite), rawAeadOp(alg));
          const name = `quic protect+unprotect 1200 B ${suite} (${qc.name})`;
          out.push(
            result(name, ours, 'pkt/s', `node:crypto raw ${alg}`, peer),
            result(`${name} cpu`, oursCpu, 'pkt/cpu-s', `node:crypto raw ${alg}`, peerCpu),
          );
        }
      }
      return out;
    },
  },
];

// ---- Transport benchmarks (issue 10): bulk on MemoryLink, handshakes, loopback vs ngtcp2 ----

const BULK_BYTES = 16 * 1024 * 1024;
const BULK_CHUNK = 64 * 1024;

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface Throughput {
  wall: number;
  cpu: number;
}

/**
 * Path MTU discovery on the 1500-byte link (RFC 9000 §14.3): QUIC probes up to 1472-byte UDP
 * payloads, as TCP uses its 1460-byte MSS on the same link; without it QUIC stays at 1200.
 */
const PMTUD_1500 = { maxUdpPayloadSize: 1500 - 20 - 8 };

/** Our QUIC on two simulated hosts (MemoryLink, virtual clock): one stream of `total` bytes A→B. */
async function quicBulkOnSim(total: number): Promise<Throughput> {
  const net = createNetwork({ seed: 1, link: { mtu: 1500 } });
  const a = net.host('A');
  const b = net.host('B');
  const creds = net.issueCertificate(['b.test'], [b.ipv4]);
  const sb = b.udp.createSocket('udp4');
  sb.bindSync(443);
  const sa = a.udp.createSocket('udp4');
  sa.bindSync(0);
  let received = 0;
  let fin = false;
  const server = new QuicDriver(
    new QuicEndpoint({
      tlsEpoch: net.epoch,
      server: {
        tls: (transportParameters) =>
          createQuicTlsServer({
            signer: certificateSigner(creds),
            alpnProtocols: ['bench'],
            transportParameters,
          }),
        transport: PMTUD_1500,
      },
    }),
    sb,
    net.clock,
    {
      onEvent: (_c, e) => {
        if (e.type === 'stream-data') {
          received += e.data.length;
          if (e.fin) fin = true;
        }
      },
    },
  );
  let connected = false;
  const client = new QuicDriver(new QuicEndpoint({ tlsEpoch: net.epoch }), sa, net.clock, {
    onEvent: (_c, e) => {
      if (e.type === 'connected') connected = true;
    },
  });
  const conn = client.connect(
    { address: b.ipv4, port: 443 },
    {
      tls: (transportParameters) =>
        createQuicTlsClient({
          serverName: 'b.test',
          verifier: certificateVerifier({ ca: net.certificateAuthority().certificatePem }),
          alpnProtocols: ['bench'],
          transportParameters,
        }),
      transport: PMTUD_1500,
    },
  );
  await net.run(() => connected, { limit: 10_000 });
  const chunk = new Uint8Array(BULK_CHUNK).fill(0x5a);
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const id = conn.openStream('bidi');
  for (let sent = 0; sent < total; sent += BULK_CHUNK) conn.write(id, chunk, sent + BULK_CHUNK >= total);
  client.flush();
  await net.run(() => fin, { limit: 3_600_000 });
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  if (received !== total) throw new Error(`bench: QUIC received ${received} of ${total}`);
  client.close();
  server.close();
  net.close();
  return { wall: total / 1e6 / wall, cpu: total / 1e6 / cpu };
}

/** Our TLS 1.3 over our TCP on the same simulated link: one connection, `total` bytes A→B. */
async function tlsTcpBulkOnSim(total: number): Promise<Throughput> {
  const net = createNetwork({ seed: 1, link: { mtu: 1500 } });
  const a = net.host('A');
  const b = net.host('B');
  let received = 0;
  let ended = false;
  const server = b.tls.createServer({ port: 443 }, (s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('end', () => {
      ended = true;
      s.end();
    });
  });
  const socket = a.tls.connect({ host: b.ipv4, port: 443, servername: 'b.test' });
  await net.run(new Promise((r) => socket.once('secureConnect', r)));
  const chunk = Buffer.alloc(BULK_CHUNK, 0x5a);
  const t0 = performance.now();
  const c0 = cpuSeconds();
  let sent = 0;
  const more = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', more);
        return;
      }
    }
    socket.end();
  };
  more();
  await net.run(() => ended, { limit: 3_600_000 });
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  if (received !== total) throw new Error(`bench: TLS received ${received} of ${total}`);
  server.close();
  net.close();
  return { wall: total / 1e6 / wall, cpu: total / 1e6 / cpu };
}

/** Full QUIC handshakes per second: our client and server endpoints exchanging datagrams in memory. */
function quicHandshakes(ms: number): Throughput {
  const creds = pki.createStepwireCredentials(new Date());
  const signer = certificateSigner(creds.leaf);
  const verifier = certificateVerifier({ ca: creds.ca.certificatePem });
  const sAddr = { address: '198.18.0.2', port: 443 };
  const cAddr = { address: '198.18.0.1', port: 5000 };
  // TLS checks certificate validity on the calendar: now = 0 is this moment.
  const tlsEpoch = Date.now();
  // Like for like with node:tls (OpenSSL): node:crypto for TLS and for packet protection, and
  // X25519 — our default hybrid X25519MLKEM768 would measure pure-JS ML-KEM instead.
  const one = () => {
    const server = new QuicEndpoint({
      tlsEpoch,
      crypto: nodeQuicCrypto,
      server: {
        tls: (tp) =>
          createQuicTlsServer({
            signer,
            alpnProtocols: ['bench'],
            transportParameters: tp,
            crypto: nodeCrypto,
          }),
      },
    });
    const client = new QuicEndpoint({ tlsEpoch, crypto: nodeQuicCrypto });
    const conn = client.connect(
      sAddr,
      {
        tls: (tp) =>
          createQuicTlsClient({
            serverName: 'stepwire.test',
            verifier,
            alpnProtocols: ['bench'],
            transportParameters: tp,
            crypto: nodeCrypto,
            groups: [NamedGroup.x25519],
          }),
      },
      0,
    );
    // One millisecond per round trip step, with due timers run, as the endpoint tests ferry.
    for (let now = 0; now < 200 && !conn.isHandshakeConfirmed; now++) {
      for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now))
        server.handle(t.datagram, cAddr, now);
      for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now))
        client.handle(t.datagram, sAddr, now);
      for (const ep of [client, server])
        if ((ep.pollTimeout() ?? Number.POSITIVE_INFINITY) <= now) ep.handleTimeout(now);
    }
    if (!conn.isHandshakeConfirmed) throw new Error('bench: QUIC handshake did not complete');
  };
  one();
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  while (performance.now() - t0 < ms) {
    one();
    n++;
  }
  return { wall: n / ((performance.now() - t0) / 1000), cpu: n / (cpuSeconds() - c0) };
}

/** node:tls (OpenSSL) full TLS 1.3 handshakes per second over an in-memory pair: the reference. */
async function nodeTlsHandshakes(ms: number): Promise<Throughput> {
  const creds = pki.createStepwireCredentials(new Date());
  const ctx = tls.createSecureContext({ cert: creds.leaf.certificatePem, key: creds.leaf.privateKeyPem });
  const one = async () => {
    const [x, y] = duplexPair();
    const server = new tls.TLSSocket(y, { isServer: true, secureContext: ctx });
    const client = tls.connect({ socket: x, servername: 'stepwire.test', ca: creds.ca.certificatePem });
    await Promise.all([once(client, 'secureConnect'), once(server, 'secure')]);
    client.destroy();
    server.destroy();
  };
  await one();
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  while (performance.now() - t0 < ms) {
    await one();
    n++;
  }
  return { wall: n / ((performance.now() - t0) / 1000), cpu: n / (cpuSeconds() - c0) };
}

const LOOPBACK_BYTES = 20 * 1000 * 1000;

async function freeUdpPort(): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function runProgram(cmd: string, args: string[], timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** A loopback download's rate, and MB per CPU-second of this process (our end or ends of it). */
interface Download {
  wall: number;
  cpu: number;
}

/** MB/s of gtlsclient downloading `total` bytes over HTTP/3 from a server on `port`. */
async function gtlsclientDownload(port: number, path: string, total: number, dir: string): Promise<Download> {
  const dl = mkdtempSync(join(dir, 'dl-'));
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const code = await runProgram(
    'gtlsclient',
    [
      '--quiet',
      '--exit-on-all-streams-close',
      '--timeout=30s',
      `--download=${dl}`,
      '127.0.0.1',
      String(port),
      `https://127.0.0.1:${port}${path}`,
    ],
    120_000,
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  const file = join(dl, path.split('/').pop() ?? '');
  const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (code !== 0 || size !== total)
    throw new Error(`bench: gtlsclient exit ${code}, ${size} of ${total} bytes`);
  return { wall: total / 1e6 / secs, cpu: total / 1e6 / cpu };
}

/** MB/s of our fetch client (connectH3, node:dgram) downloading `path` from `port`. */
async function ourDownload(
  port: number,
  path: string,
  total: number,
  ca: string | undefined,
): Promise<Download> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const h3 = await connectH3({
    socket: sock,
    clock: new RealClock(),
    remote: { address: '127.0.0.1', port },
    serverName: 'stepwire.test',
    authority: `127.0.0.1:${port}`,
    ...(ca ? { ca } : { insecure: true }),
  });
  const res = await h3.client.request({ ':path': path });
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - c0;
  h3.close();
  sock.close();
  if (res.status !== 200 || res.body.length !== total)
    throw new Error(`bench: our client got ${res.status} with ${res.body.length} of ${total} bytes`);
  return { wall: total / 1e6 / secs, cpu: total / 1e6 / cpu };
}

/** The kernel's count of UDP datagrams dropped for a full receive buffer (netstat -su), or undefined. */
function udpReceiveBufferErrors(): number | undefined {
  try {
    const snmp = readFileSync('/proc/net/snmp', 'utf8').split('\n');
    const [names, values] = snmp.filter((l) => l.startsWith('Udp:'));
    const i = names?.split(/\s+/).indexOf('RcvbufErrors') ?? -1;
    const v = values?.split(/\s+/)[i];
    return i > 0 && v !== undefined ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

async function loopbackFigures(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sw-quic-bench-'));
  const children: ReturnType<typeof spawn>[] = [];
  try {
    const { key, cert } = selfSignedCertificate(dir);
    const htdocs = join(dir, 'htdocs');
    mkdirSync(htdocs);
    writeFileSync(join(htdocs, 'blob'), patternChunk(0, LOOPBACK_BYTES));
    // ngtcp2 both ends: gtlsserver serving the file, gtlsclient downloading it.
    const gport = await freeUdpPort();
    const gserver = spawn('gtlsserver', ['--quiet', '-d', htdocs, '127.0.0.1', String(gport), key, cert], {
      stdio: 'ignore',
    });
    children.push(gserver);
    await new Promise((r) => setTimeout(r, 300));
    // Ours both ends: serve's HTTP/3 service and fetch's client, in this one process.
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const ourPort = udp.address().port;
    const identity = ephemeralServeIdentity();
    const service = h3OverDatagrams({ socket: udp, clock: new RealClock(), port: ourPort, identity });
    const zero: Download = { wall: 0, cpu: 0 };
    const best = { peer: zero, ours: zero, gtlsFromOurs: zero, oursFromGtls: zero };
    const max = (a: Download, b: Download): Download => ({
      wall: Math.max(a.wall, b.wall),
      cpu: Math.max(a.cpu, b.cpu),
    });
    // Datagrams the kernel dropped for a full socket buffer while ours ran both ends: each is
    // a loss our recovery repairs (the driver sizes its socket buffers against it).
    let oursRcvbufErrors = 0;
    try {
      for (let round = 0; round < 3; round++) {
        best.peer = max(best.peer, await gtlsclientDownload(gport, '/blob', LOOPBACK_BYTES, dir));
        const e0 = udpReceiveBufferErrors();
        best.ours = max(
          best.ours,
          await ourDownload(ourPort, `/bytes/${LOOPBACK_BYTES}`, LOOPBACK_BYTES, identity.caPem),
        );
        const e1 = udpReceiveBufferErrors();
        if (e0 !== undefined && e1 !== undefined) oursRcvbufErrors += e1 - e0;
        best.gtlsFromOurs = max(
          best.gtlsFromOurs,
          await gtlsclientDownload(ourPort, `/bytes/${LOOPBACK_BYTES}`, LOOPBACK_BYTES, dir),
        );
        best.oursFromGtls = max(
          best.oursFromGtls,
          await ourDownload(gport, '/blob', LOOPBACK_BYTES, undefined),
        );
      }
    } finally {
      service.close();
      udp.close();
    }
    const label = `${LOOPBACK_BYTES / 1e6} MB HTTP/3 download, node:dgram loopback`;
    const pair = 'gtlsclient↔gtlsserver';
    return [
      result(`quic ${label} (ours↔ours)`, best.ours.wall, 'MB/s', pair, best.peer.wall),
      result(`quic ${label} (gtlsclient←our server)`, best.gtlsFromOurs.wall, 'MB/s', pair, best.peer.wall),
      result(`quic ${label} (our client←gtlsserver)`, best.oursFromGtls.wall, 'MB/s', pair, best.peer.wall),
      // Per CPU-second of this process (both ends, or our one end): steadier than wall time on
      // a loaded machine. ngtcp2's CPU is in its own processes, so these lines have no peer.
      result(`quic ${label} (ours↔ours, both ends) cpu`, best.ours.cpu, 'MB/cpu-s'),
      result(`quic ${label} (our server to gtlsclient) cpu`, best.gtlsFromOurs.cpu, 'MB/cpu-s'),
      result(`quic ${label} (our client from gtlsserver) cpu`, best.oursFromGtls.cpu, 'MB/cpu-s'),
      result(`quic ${label} (ours↔ours) receive buffer errors, 3 runs`, oursRcvbufErrors, 'datagrams'),
    ];
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

quicBenchmarks.push(
  {
    name: 'quic bulk on MemoryLink',
    async run() {
      // Alternate the two, best of three each, against load drift on a shared machine.
      let q: Throughput = { wall: 0, cpu: 0 };
      let t: Throughput = { wall: 0, cpu: 0 };
      for (let i = 0; i < 3; i++) {
        const tt = await tlsTcpBulkOnSim(BULK_BYTES);
        const qq = await quicBulkOnSim(BULK_BYTES);
        t = { wall: Math.max(t.wall, tt.wall), cpu: Math.max(t.cpu, tt.cpu) };
        q = { wall: Math.max(q.wall, qq.wall), cpu: Math.max(q.cpu, qq.cpu) };
      }
      const name = `quic bulk 16 MiB one stream, MemoryLink mtu 1500, DPLPMTUD to 1472`;
      return [
        result(name, q.wall, 'MB/s', 'our TCP+TLS 1.3', t.wall),
        result(`${name} cpu`, q.cpu, 'MB/cpu-s', 'our TCP+TLS 1.3', t.cpu),
      ];
    },
  },
  {
    name: 'quic handshakes',
    async run() {
      let q: Throughput = { wall: 0, cpu: 0 };
      let n: Throughput = { wall: 0, cpu: 0 };
      for (let i = 0; i < 3; i++) {
        const nn = await nodeTlsHandshakes(1000);
        const qq = quicHandshakes(1000);
        n = { wall: Math.max(n.wall, nn.wall), cpu: Math.max(n.cpu, nn.cpu) };
        q = { wall: Math.max(q.wall, qq.wall), cpu: Math.max(q.cpu, qq.cpu) };
      }
      return [
        result(
          'quic full handshake client+server in memory (node crypto, X25519)',
          q.wall,
          'hs/s',
          'node:tls TLS 1.3 in memory',
          n.wall,
        ),
        result(
          'quic full handshake client+server in memory (node crypto, X25519) cpu',
          q.cpu,
          'hs/cpu-s',
          'node:tls TLS 1.3 in memory',
          n.cpu,
        ),
      ];
    },
  },
  {
    name: 'quic loopback vs ngtcp2',
    requires: () =>
      hasProgram('gtlsclient') && hasProgram('gtlsserver')
        ? undefined
        : 'gtlsclient/gtlsserver (ngtcp2-client/-server) not installed',
    run: loopbackFigures,
  },
);

function hasProgram(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
