import http from 'node:http';
import { decodePcap } from '@stepwire/link';
import { describe, expect, it } from 'vitest';
import {
  createNetwork,
  type NetHost,
  SIM_EPOCH,
  SimulationStalled,
  SimulationTimeLimit,
} from '../src/index.ts';

/** node:http on our TCP: a server on `server`, one GET from `client`; resolves with status and body. */
function httpGet(client: NetHost, server: NetHost, path = '/hello') {
  const app = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`you asked for ${req.url} from ${req.socket.remoteAddress}`);
  });
  const tcpServer = server.tcp.createServer((s) => app.emit('connection', s));
  tcpServer.listen(80);
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get(
      {
        host: server.ipv4,
        path,
        headers: { connection: 'close' },
        createConnection: () => client.tcp.connect({ host: server.ipv4, port: 80 }) as never,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
  return { done, close: () => tcpServer.close() };
}

describe('createNetwork', () => {
  it('gives each host its addresses in order, and the same host for the same name', () => {
    const net = createNetwork();
    const a = net.host('a');
    const b = net.host('b');
    expect([a.ipv4, a.ipv6, b.ipv4, b.ipv6]).toEqual([
      '198.18.0.1',
      'fd00:5757::1',
      '198.18.0.2',
      'fd00:5757::2',
    ]);
    expect(net.host('a')).toBe(a);
    net.close();
  });

  it('runs node:http server and client on two hosts with await net.run()', async () => {
    const net = createNetwork({ seed: 3, link: { delay: 5 }, trace: true });
    const a = net.host('a');
    const b = net.host('b');
    const { done, close } = httpGet(a, b);
    const res = await net.run(done);
    expect(res.status).toBe(200);
    // A dual-stack listener (::) reports an IPv4 peer as IPv4-mapped, as node:net does.
    expect(res.body).toMatch(/^you asked for \/hello from (::ffff:)?198\.18\.0\.1$/);
    // Handshake, request, response and close crossed the switch; each path pays 5 ms once.
    const ladder = net.ladder();
    expect(ladder).toMatch(/a→b +IPv4 198\.18\.0\.1→198\.18\.0\.2 TCP \d+→80 SYN /);
    expect(ladder).toMatch(/b→a +IPv4 .* TCP 80→\d+ SYN,ACK /);
    expect(ladder).toMatch(/0\.010 +a→b .*TCP \d+→80 ACK/);
    close();
    await net.run(); // until idle: FINs, TIME-WAIT
    expect(net.pending().hosts.every((h) => h.connections.length === 0)).toBe(true);
    expect(net.clock.now()).toBeGreaterThan(10);
    net.close();
  });

  it('completes the exchange over a lossy, jittery link, the same way for the same seed', async () => {
    const once = async (seed: number) => {
      const net = createNetwork({ seed, link: { loss: 0.2, delay: 2, jitter: 3 }, trace: true });
      const a = net.host('a');
      const b = net.host('b');
      const { done, close } = httpGet(a, b);
      const res = await net.run(done);
      close();
      await net.run();
      net.close();
      return { res, ladder: net.ladder(), drops: net.lines.length };
    };
    const first = await once(11);
    const again = await once(11);
    const other = await once(12);
    expect(first.res.status).toBe(200);
    expect(again.ladder).toBe(first.ladder);
    expect(other.ladder).not.toBe(first.ladder);
  });

  it('runs for a span of simulated time, firing exactly the timers due in it', async () => {
    const net = createNetwork();
    const fired: number[] = [];
    for (const at of [100, 200, 300]) net.clock.setTimer(at, () => fired.push(at));
    await net.run(200);
    expect(fired).toEqual([100, 200]);
    expect(net.clock.now()).toBe(200);
    await net.run(() => fired.length === 3);
    expect(net.clock.now()).toBe(300);
    net.close();
  });

  it('reports a stall with what is still open', async () => {
    const net = createNetwork();
    const a = net.host('a');
    const b = net.host('b');
    const sock = b.udp.createSocket('udp4');
    sock.bind(5353);
    // b accepts but never answers: after the handshake nothing is left to happen.
    b.tcp.createServer(() => {}).listen(7000);
    const c = a.tcp.connect({ host: b.ipv4, port: 7000 });
    const reply = new Promise((resolve) => c.once('data', resolve));
    const err = await net.run(reply).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulationStalled);
    const msg = (err as Error).message;
    expect(msg).toMatch(/stalled at t=\d+ ms: the awaited promise is still pending but no timer is armed/);
    expect(msg).toMatch(/host a: 0 timer\(s\) armed/);
    expect(msg).toMatch(/tcp 198\.18\.0\.1:\d+ → 198\.18\.0\.2:7000 ESTABLISHED/);
    expect(msg).toMatch(/tcp listening on .*:7000/);
    expect(msg).toMatch(/udp socket bound to .*:5353/);
    net.close();
  });

  it('reports a time limit as a time limit, naming the timers still armed', async () => {
    // Every packet from a is lost: the SYN is retransmitted with backoff for minutes.
    const net = createNetwork({ link: { loss: 1 } });
    const a = net.host('a');
    const b = net.host('b');
    b.tcp.createServer(() => {}).listen(80);
    const c = a.tcp.connect({ host: b.ipv4, port: 80 });
    const connected = new Promise((resolve) => c.once('connect', resolve));
    c.on('error', () => {});
    const err = await net.run(connected, { limit: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimulationTimeLimit);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^time limit: the awaited promise still pending after 5000 ms of simulated time/);
    expect(msg).toMatch(/host a: 1 timer\(s\) armed \(tcp 1,/);
    expect(msg).toMatch(/SYN-SENT/);
    net.close();
  });

  it('rejects with the awaited promise’s own error', async () => {
    const net = createNetwork();
    net.clock.setTimer(50, () => {});
    await expect(net.run(Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    net.close();
  });

  it('runs our TLS between two hosts with the network’s CA, and a pcap dated on the simulation’s calendar', async () => {
    const lines: string[] = [];
    const net = createNetwork({ seed: 5, pcap: true, keylog: (l) => lines.push(l) });
    const a = net.host('a');
    const b = net.host('b');
    const server = b.tls.createServer({ port: 443 }, (s) => {
      s.on('data', (d: Buffer) => s.end(`echo: ${d}`));
    });
    const client = a.tls.connect({ host: b.ipv4, port: 443, servername: 'b.test' });
    const reply = new Promise<string>((resolve, reject) => {
      let got = '';
      client.on('secureConnect', () => client.write('hi'));
      client.on('data', (d: Buffer) => (got += d));
      client.on('end', () => resolve(got));
      client.on('error', reject);
    });
    expect(await net.run(reply)).toBe('echo: hi');
    expect(client.authorized).toBe(true);
    expect(lines.some((l) => l.startsWith('CLIENT_HANDSHAKE_TRAFFIC_SECRET '))).toBe(true);
    server.close();
    await net.run();
    const pcap = decodePcap(net.pcap?.bytes() ?? new Uint8Array());
    expect(pcap.records.length).toBeGreaterThan(8);
    const first = pcap.records[0];
    expect(first && first.tsSec * 1000).toBe(SIM_EPOCH);
    net.close();
  });
});
