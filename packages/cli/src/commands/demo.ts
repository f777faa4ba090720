import { appendFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { PingError } from '@stepwire/ip';
import { formatLadderLine, ladderHeader, noteFor, Sim, type SimHost } from '@stepwire/sim';
import { type CryptoProvider, connect, createServer, nobleCrypto, pki } from '@stepwire/tls';
import { udpEcho } from '@stepwire/udp';
import { Prng } from '@stepwire/wire';
import { Command } from 'commander';
import { intIn, probability } from '../args.ts';
import { forbidKernelTrafficOffLoopback } from '../safety.ts';
import { createHttpApp } from '../services/http-app.ts';

interface DemoOptions {
  seed: number;
  loss: number;
  mtu: number;
  pcap?: string;
  keylog?: string;
}

/**
 * The demo's TLS runs on a fixed calendar date plus simulated time, with randomness drawn
 * from the run's seed: the same seed gives the same certificates' lengths, key shares,
 * randoms and therefore the same ladder. (Never do this outside a simulation.)
 */
const DEMO_EPOCH = Date.UTC(2026, 0, 1);

function seededCrypto(prng: Prng): CryptoProvider {
  return {
    ...nobleCrypto,
    randomBytes: (n: number) => prng.bytes(n),
    generateKeyPair: (group, privateKey) => nobleCrypto.generateKeyPair(group, privateKey ?? prng.bytes(32)),
  };
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('two simulated hosts ping, echo UDP and send a fragmented datagram; prints the ladder')
    .option('--seed <n>', 'seed of the simulated network', intIn(0, 2 ** 32 - 1), 1)
    .option('--loss <p>', 'probability that the wire loses a packet', probability, 0)
    .option('--mtu <n>', 'MTU of the wire (IPv6 needs at least 1280)', intIn(68, 65535), 1500)
    .option('--pcap <file>', 'also write every packet to a pcap file for Wireshark')
    .option(
      '--keylog <file>',
      'write the TLS secrets (SSLKEYLOGFILE format) so Wireshark can decrypt the pcap',
    )
    .action(async (o: DemoOptions) => {
      await runDemo(o, (s) => process.stdout.write(`${s}\n`));
    });
}

export async function runDemo(o: DemoOptions, print: (s: string) => void): Promise<void> {
  forbidKernelTrafficOffLoopback();
  const sim = new Sim({
    seed: o.seed,
    mtu: o.mtu,
    impairments: { loss: o.loss, delay: 1 },
    ...(o.pcap ? { pcapPath: o.pcap } : {}),
    onLine: (l) => print(formatLadderLine(l)),
  });
  sim.trace.on((e) => {
    // Events are emitted as they happen: stamp them with simulated time (TLS keeps a
    // calendar clock of its own for certificate validity).
    const n = noteFor({ ...e, t: sim.clock.now() });
    if (n) print(formatLadderLine(n));
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

  step('TCP (RFC 9293): handshake, an HTTP request and its response, the close — node:http over our sockets');
  const app = createHttpApp();
  const server = b.tcp.createServer((socket) => app.emit('connection', socket));
  server.listen(80);
  try {
    const res = await sim.run(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.get(
          {
            host: b.ipv4,
            path: '/',
            headers: { host: 'stepwire.test', connection: 'close' },
            createConnection: () => a.tcp.connect({ host: b.ipv4, port: 80 }) as never,
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
  if (o.keylog) writeFileSync(o.keylog, '');
  const tlsPrng = new Prng(o.seed ^ 0x7715);
  const provider = seededCrypto(tlsPrng);
  const now = () => DEMO_EPOCH + sim.clock.now();
  const { ca, leaf } = pki.createStepwireCredentials(new Date(DEMO_EPOCH - 3600_000), { keyType: 'ed25519' });
  const keylog = o.keylog ? (line: string) => appendFileSync(o.keylog!, `${line}\n`) : undefined;
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
        const req = http.get(
          {
            host: b.ipv4,
            path: '/',
            headers: { host: 'stepwire.test', connection: 'close' },
            createConnection: () =>
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
              }) as never,
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
  if (o.keylog)
    print(`\nTLS key log written to ${o.keylog} (Wireshark: Preferences → TLS → (Pre)-Master-Secret log)`);
  if (o.pcap) print(`\npcap written to ${o.pcap}`);
}
