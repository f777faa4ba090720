/**
 * HTTPS between two simulated hosts: node:http on our TLS 1.3 on our TCP, deterministic.
 *
 * `server.tls.createServer()` gives host "server" a certificate from the network's own CA
 * (for its addresses and server.test); `client.tls.connect()` trusts that CA. TLS randoms
 * and key shares come from the seed, so the same seed gives the same bytes on the wire —
 * set a breakpoint in packages/tls/src/client.ts and step the handshake (docs/debugging.md).
 * The pcap goes to $PCAP (default: https-between-hosts.pcap in the temporary directory),
 * dated on the simulation's calendar; with SSLKEYLOGFILE set, the TLS secrets are written
 * there too (as curl and Node do), so Wireshark decrypts the HTTP inside.
 *
 *   SSLKEYLOGFILE=/tmp/keys.txt pnpm example https-between-hosts
 *   wireshark -o tls.keylog_file:/tmp/keys.txt /tmp/https-between-hosts.pcap
 */
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetwork } from '@stepwire/sim';

const keylogFile = process.env.SSLKEYLOGFILE;
const pcapFile = process.env.PCAP ?? join(tmpdir(), 'https-between-hosts.pcap');
const net = createNetwork({
  seed: 1,
  link: { delay: 10 },
  trace: (line) => console.log(line),
  pcap: pcapFile,
  ...(keylogFile ? { keylog: (line: string) => appendFileSync(keylogFile, `${line}\n`) } : {}),
});
const client = net.host('client');
const server = net.host('server');

const app = http.createServer((req, res) =>
  res.end(`hello over TLS, ${req.socket.remoteAddress ?? 'stranger'}\n`),
);
const tls = server.tls.createServer({ port: 443, ALPNProtocols: ['http/1.1'] }, (socket) =>
  app.emit('connection', socket),
);

const response = new Promise<string>((resolve, reject) => {
  http
    .get(
      {
        host: server.ipv4,
        headers: { connection: 'close' },
        createConnection: () =>
          client.tls.connect({
            host: server.ipv4,
            port: 443,
            servername: 'server.test',
            ALPNProtocols: ['http/1.1'],
          }) as never,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve(`HTTP ${res.statusCode}: ${body.trim()}`));
      },
    )
    .on('error', reject);
});

console.log(await net.run(response));
tls.close();
await net.run();
net.close();
console.log(`pcap: ${pcapFile} (${net.pcap?.packets} packets, dated ${new Date(net.epoch).toISOString()})`);
