/**
 * Nagle's algorithm meets delayed ACK: the same small-writes exchange with Nagle on and with
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
 *   pnpm example tcp-nagle-delayed-ack
 */
import { createNetwork } from '@stepwire/sim';
import { isMain } from './lib/stage.ts';

export const HEADER = 20;
export const BODY = 30;
export const REPLY = 10;

export interface Exchange {
  /** ms from the header's write to the reply's arrival. */
  ms: number;
  /** ms between the header and the body reaching the server. */
  bodyLagMs: number;
}

async function exchanges(noDelay: boolean, o: { seed: number; print: boolean; rounds: number }) {
  const net = createNetwork({
    seed: o.seed,
    link: { delay: 5 },
    ...(o.print
      ? { trace: (line: string) => / TCP /.test(line) && !line.includes(' · ') && console.log(line) }
      : {}),
  });
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
  listening.listen(7000);
  const socket = client.tcp.connect({ host: server.ipv4, port: 7000 });
  socket.setNoDelay(noDelay);
  await net.run(new Promise((resolve) => socket.once('connect', resolve)));
  const out: Exchange[] = [];
  for (let i = 0; i < o.rounds; i++) {
    const start = net.clock.now();
    const before = arrivals.length;
    const reply = new Promise((resolve) => socket.once('data', resolve));
    socket.write(Buffer.alloc(HEADER, 0x68));
    socket.write(Buffer.alloc(BODY, 0x62));
    await net.run(reply);
    const got = arrivals.slice(before);
    out.push({ ms: net.clock.now() - start, bodyLagMs: (got.at(-1) ?? 0) - (got[0] ?? 0) });
    await net.run(100 - (net.clock.now() % 100));
  }
  socket.end();
  listening.close();
  await net.run(() => true);
  net.close();
  return out;
}

export async function run(o: { seed?: number; print?: boolean; rounds?: number } = {}) {
  const opts = { seed: o.seed ?? 1, print: o.print ?? false, rounds: o.rounds ?? 3 };
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
        `${name}: exchanges took ${xs.map((x) => `${x.ms} ms`).join(', ')} (body ${xs.map((x) => x.bodyLagMs).join('/')} ms behind its header)`,
      );
  }
  return { nagle, noDelay };
}

if (isMain(import.meta.url)) await run({ print: true });
