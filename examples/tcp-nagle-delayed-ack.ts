/**
 * Nagle's algorithm meets delayed ACK: a 40 ms stall per exchange, gone with setNoDelay.
 *
 * The same small-writes exchange with Nagle on and with
 * `setNoDelay(true)`, showing the stall in virtual time.
 *
 * The client sends each request as two small writes (a 20-byte header, then a 30-byte body)
 * and waits for a 10-byte reply. With Nagle on (RFC 9293 §3.7.4, RFC 896) the body may not
 * leave while the header is unacknowledged; the server has nothing to say until the body
 * arrives, so it delays its ACK (RFC 9293 §3.8.6.3; ours waits 40 ms, Linux's minimum; the
 * RFC allows up to 500 ms, 200 ms is common) — and the exchange stalls 40 ms every time.
 * With noDelay the body follows at once and each exchange takes one round trip (10 ms).
 * (The first exchange, right after the handshake, has its header ACKed at once by our TCP;
 * from the second on, each waits out the delayed ACK.) Only the TCP segments are printed.
 *
 * With `--tun` (root) the client is our stack on a TUN device and the server a Python
 * program on the Linux kernel's TCP in a namespace: the kernel's own delayed ACK makes the
 * same stall, in real time.
 *
 *   pnpm example tcp-nagle-delayed-ack
 *   pnpm example tcp-nagle-delayed-ack --tun
 */
import type { NetHost } from '@stepwire/sim';
import { createNetwork, type LadderLine, type Network } from '@stepwire/sim';
import { isMain } from './lib/stage.ts';

export const HEADER = 20;
export const BODY = 30;
export const REPLY = 10;
const PORT = 7000;

export interface Exchange {
  /** ms from the header's write to the reply's arrival. */
  ms: number;
  /** Whether an ACK from the server came in between the header and the body leaving (Nagle holding the body). */
  bodyAfterAck: boolean;
  /** ms between the header and the body reaching the server (simulated server only). */
  bodyLagMs?: number;
}

/** The kernel-side server: reads 50-byte requests, answers each with 10 bytes. */
const KERNEL_SERVER = `
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('198.18.0.1', ${PORT}))
l.listen(1)
l.settimeout(20)
print('ready', flush=True)
c, _ = l.accept()
c.settimeout(20)
buf = b''
while True:
    d = c.recv(4096)
    if not d:
        break
    buf += d
    while len(buf) >= ${HEADER + BODY}:
        buf = buf[${HEADER + BODY}:]
        c.sendall(b'r' * ${REPLY})
c.close()
`;

interface Wire {
  net: Network;
  client: NetHost;
  serverAddress: string;
  /** Server-side arrival times of the request bytes (simulated server only). */
  arrivals?: number[];
  stop(): void;
}

/** Two simulated hosts: our TCP on both ends. */
function simulated(
  seed: number,
  trace: ((line: string) => void) | undefined,
  onLine: (l: LadderLine) => void,
): Wire {
  const net = createNetwork({ seed, link: { delay: 5 }, trace: trace ?? true, onLine });
  const client = net.host('client');
  const server = net.host('server');
  const arrivals: number[] = [];
  const listening = server.tcp.createServer((socket) => {
    let buffered = 0;
    socket.on('data', (d: Buffer) => {
      arrivals.push(net.clock.now());
      buffered += d.length;
      // A whole request (header + body) is in: reply.
      while (buffered >= HEADER + BODY) {
        buffered -= HEADER + BODY;
        socket.write(Buffer.alloc(REPLY, 0x72));
      }
    });
  });
  listening.listen(PORT);
  return { net, client, serverAddress: server.ipv4, arrivals, stop: () => listening.close() };
}

/** Our stack on TUN, the kernel's TCP as the server (root). */
async function overTun(
  trace: ((line: string) => void) | undefined,
  onLine: (l: LadderLine) => void,
): Promise<Wire> {
  const net = createNetwork({ clock: 'real', trace: trace ?? true, onLine });
  const client = net.tun('stepwire', { netns: `sw-nagle-${process.pid}` });
  const py = client.netns.spawn('/usr/bin/python3', ['-u', '-c', KERNEL_SERVER]);
  await new Promise<void>((resolve, reject) => {
    py.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    py.once('exit', (code) => reject(new Error(`kernel-side server exited ${code}`)));
  });
  return { net, client, serverAddress: client.kernel.v4, stop: () => py.kill('SIGKILL') };
}

async function exchanges(
  noDelay: boolean,
  o: { seed: number; print: boolean; rounds: number; tun: boolean },
) {
  const segments: { out: boolean; len: number }[] = [];
  const onLine = (l: LadderLine) => {
    if (l.kind !== 'packet' || !/ TCP /.test(l.summary)) return;
    segments.push({
      out: l.from === 'client' || l.from === 'stepwire',
      len: Number(/len=(\d+)/.exec(l.summary)?.[1] ?? 0),
    });
  };
  const print = o.print
    ? (line: string) => / TCP /.test(line) && !line.includes(' · ') && console.log(line)
    : undefined;
  const wire = o.tun ? await overTun(print, onLine) : simulated(o.seed, print, onLine);
  const { net, client } = wire;
  const now = () => net.clock.now();
  try {
    const socket = client.tcp.connect({ host: wire.serverAddress, port: PORT });
    socket.setNoDelay(noDelay);
    await net.run(new Promise((resolve) => socket.once('connect', resolve)));
    const out: Exchange[] = [];
    for (let i = 0; i < o.rounds; i++) {
      const start = now();
      const before = wire.arrivals?.length ?? 0;
      const firstSegment = segments.length;
      const reply = new Promise((resolve) => socket.once('data', resolve));
      socket.write(Buffer.alloc(HEADER, 0x68));
      socket.write(Buffer.alloc(BODY, 0x62));
      await net.run(reply);
      // The ladder of this round: did an ACK come in between our header and our body?
      const round = segments.slice(firstSegment);
      const header = round.findIndex((s) => s.out && s.len === HEADER);
      const body = round.findIndex((s) => s.out && s.len === BODY);
      const bodyAfterAck = round.slice(header + 1, body).some((s) => !s.out);
      const got = wire.arrivals?.slice(before);
      out.push({
        ms: Math.round((now() - start) * 10) / 10,
        bodyAfterAck,
        ...(got ? { bodyLagMs: (got.at(-1) ?? 0) - (got[0] ?? 0) } : {}),
      });
      // Start each round on a fresh 100 ms mark so the ladder reads easily.
      await net.run(100 - (now() % 100));
    }
    socket.end();
    wire.stop();
    if (!o.tun) await net.run(() => true);
    return out;
  } finally {
    net.close();
  }
}

export async function run(o: { seed?: number; print?: boolean; rounds?: number; tun?: boolean } = {}) {
  const opts = {
    seed: o.seed ?? 1,
    print: o.print ?? false,
    rounds: o.rounds ?? (o.tun ? 5 : 3),
    tun: o.tun ?? false,
  };
  if (opts.print) console.log('— Nagle on (the default) —');
  const nagle = await exchanges(false, opts);
  if (opts.print) console.log('— setNoDelay(true) —');
  const noDelay = await exchanges(true, opts);
  if (opts.print) {
    for (const [name, xs] of [
      ['Nagle on', nagle],
      ['noDelay ', noDelay],
    ] as const)
      console.log(
        `${name}: exchanges took ${xs.map((x) => `${x.ms} ms`).join(', ')}; body held for an ACK: ${xs.map((x) => (x.bodyAfterAck ? 'yes' : 'no')).join('/')}`,
      );
  }
  return { nagle, noDelay };
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
