/**
 * node:http over our TCP: Node's own HTTP server and client, with stepwire's TCP (RFC 9293)
 * underneath instead of the kernel's, between two simulated hosts.
 *
 * node:http accepts any Duplex stream: the server takes our sockets through
 * `server.emit('connection', socket)`, the client through `createConnection`. `net.run()`
 * drives the virtual clock and lets Node's callbacks run between timers, so the code reads
 * like an ordinary node:http program. The wire loses 10% of the packets; with seed 10 it
 * loses the request itself: watch TCP send it again with a tail loss probe (RFC 8985 §7),
 * a couple of round trips later rather than after the 1 s retransmission timer of RFC 6298,
 * and the response arrive anyway.
 *
 *   pnpm example http-over-tcp
 */
import http from 'node:http';
import { createNetwork } from '@stepwire/sim';

const net = createNetwork({ seed: 10, link: { delay: 5, loss: 0.1 }, trace: (line) => console.log(line) });
const client = net.host('client');
const server = net.host('server');

const app = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello ${req.socket.remoteAddress}, you asked for ${req.url}\n`);
});
const listener = server.tcp.createServer((socket) => app.emit('connection', socket));
listener.listen(80);

const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
  const req = http.get(
    {
      host: server.ipv4,
      path: '/index.html',
      headers: { connection: 'close' },
      // Never agent: false together with createConnection (that would dial the kernel).
      createConnection: () => client.tcp.connect({ host: server.ipv4, port: 80 }) as never,
    },
    (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    },
  );
  req.on('error', reject);
});

const { status, body } = await net.run(response);
console.log(`HTTP ${status}: ${body.trim()}`);

listener.close();
await net.run(); // until idle: the FIN exchange and TIME-WAIT finish in simulated time
const lost = net.lines.filter((l) => l.kind === 'note' && l.text.startsWith('link dropped')).length;
console.log(`done at t=${net.clock.now()} ms; the wire lost ${lost} packet(s) and TCP recovered`);
net.close();
