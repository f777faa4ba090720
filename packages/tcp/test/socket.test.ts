import { Host, parseIp } from '@stepwire/ip';
import type { TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Tcp, type TcpSocket, type TcpSystemError } from '../src/index.ts';
import { collect, once, rawHosts, sha, streamBytes, tcpSim } from './net.ts';

const bytes = streamBytes;

describe('TcpSocket over two simulated hosts', () => {
  it('echoes over IPv4, with addresses and byte counts like net.Socket', async () => {
    const { a, b, run, sim } = tcpSim();
    let serverSide: TcpSocket | undefined;
    const server = b.createServer((s: TcpSocket) => {
      serverSide = s;
      s.pipe(s);
    });
    server.listen(7);
    await run(once(server, 'listening'));
    expect(server.address()).toEqual({ address: '::', family: 'IPv6', port: 7 });
    const c = a.connect({ host: sim.b.ipv4, port: 7 });
    expect(c.connecting).toBe(true);
    expect(c.readyState).toBe('opening');
    const got = collect(c);
    const closed = once(c, 'close');
    await run(once(c, 'connect'));
    expect(c.readyState).toBe('open');
    expect(c.remoteAddress).toBe('198.18.0.2');
    expect(c.remotePort).toBe(7);
    expect(c.remoteFamily).toBe('IPv4');
    expect(c.localAddress).toBe('198.18.0.1');
    expect(c.localPort).toBeGreaterThanOrEqual(49152);
    expect(c.address()).toEqual({ address: '198.18.0.1', family: 'IPv4', port: c.localPort });
    c.write('hello ');
    c.end('world');
    const data = await run(got);
    expect(data.toString()).toBe('hello world');
    await run(closed);
    expect(c.bytesWritten).toBe(11);
    expect(c.bytesRead).toBe(11);
    // The server listens on '::' (both families): like node:net it sees its IPv4 peer as an
    // IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2); the client sees plain IPv4.
    expect(serverSide?.remoteAddress).toBe('::ffff:198.18.0.1');
    expect(serverSide?.remoteFamily).toBe('IPv6');
    expect(serverSide?.address()).toEqual({ address: '::ffff:198.18.0.2', family: 'IPv6', port: 7 });
    expect(serverSide?.remotePort).toBe(c.localPort);
    // The client closed first: its end of the connection waits in TIME-WAIT (RFC 9293 §3.10.8).
    expect(a.stats.byState['TIME-WAIT']).toBe(1);
    sim.clock.advance(61_000);
    expect(a.stats.connections).toBe(0);
  });

  it('dual-stack addresses as node:net reports them: mapped on a :: listener, plain IPv4 on 0.0.0.0 or ipv6Only', async () => {
    const { a, b, run, sim } = tcpSim();
    const seen = new Map<number, [string | undefined, string | undefined, string | undefined]>();
    for (const [port, host, ipv6Only] of [
      [81, '::', false],
      [82, '0.0.0.0', false],
      [83, '::', true],
    ] as const) {
      b.createServer((s: TcpSocket) => {
        seen.set(port, [s.remoteAddress, s.remoteFamily, s.localAddress]);
        s.end();
      }).listen({ port, host, ipv6Only });
    }
    for (const port of [81, 82]) {
      const c4 = a.connect({ host: sim.b.ipv4, port });
      c4.resume();
      await run(once(c4, 'close'));
    }
    await expect(run(once(a.connect({ host: sim.b.ipv4, port: 83 }), 'connect'))).rejects.toThrow(
      /ECONNREFUSED/,
    );
    expect(seen.get(81)).toEqual(['::ffff:198.18.0.1', 'IPv6', '::ffff:198.18.0.2']);
    expect(seen.get(82)).toEqual(['198.18.0.1', 'IPv4', '198.18.0.2']);
    expect(seen.has(83)).toBe(false); // IPV6_V6ONLY: the IPv4 SYN was refused
    // An IPv6 peer of the :: listener keeps its address.
    const c6 = a.connect({ host: sim.b.ipv6, port: 81 });
    c6.resume();
    await run(once(c6, 'close'));
    expect(seen.get(81)).toEqual(['fd00:5757::1', 'IPv6', 'fd00:5757::2']);
  });

  it('echoes over IPv6', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer((s: TcpSocket) => s.pipe(s)).listen(8080, sim.b.ipv6);
    await run(once(server, 'listening'));
    const c = a.connect({ host: sim.b.ipv6, port: 8080 });
    const got = collect(c);
    c.end(bytes(100_000));
    expect(sha(await run(got))).toBe(sha(bytes(100_000)));
    expect(c.remoteFamily).toBe('IPv6');
    expect(c.localAddress).toBe('fd00:5757::1');
    expect(c.connection?.mss).toBe(1500 - 60 - 12);
  });

  it('half-closes: after the client ends, an allowHalfOpen server still sends', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer({ allowHalfOpen: true }, (s: TcpSocket) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => {
        // Our FIN came; the connection is in CLOSE-WAIT and still carries data out.
        expect(s.connection?.state).toBe('CLOSE-WAIT');
        const req = Buffer.concat(parts).toString();
        s.write(`you said ${req}; `);
        setImmediate(() => s.end('bye'));
      });
    });
    server.listen(9);
    const c = a.connect({ host: sim.b.ipv4, port: 9, allowHalfOpen: true });
    const got = collect(c);
    const finished = once(c, 'finish');
    c.end('ping');
    await run(finished);
    const reply = await run(got);
    expect(reply.toString()).toBe('you said ping; bye');
  });

  it('a SYN to a closed port is answered with RST: ECONNREFUSED', async () => {
    const { a, b, run, sim } = tcpSim();
    const c = a.connect({ host: sim.b.ipv4, port: 4444 });
    const order: string[] = [];
    c.on('error', () => order.push('error'));
    c.on('close', (hadError: boolean) => order.push(`close(${hadError})`));
    const err = await run(once<TcpSystemError>(c, 'error'));
    await new Promise((r) => setImmediate(r));
    // As net.Socket: 'error', then 'close' with hadError.
    expect(order).toEqual(['error', 'close(true)']);
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.errno).toBe(-111);
    expect(err.syscall).toBe('connect');
    expect(err.address).toBe('198.18.0.2');
    expect(err.port).toBe(4444);
    expect(err.message).toBe('connect ECONNREFUSED 198.18.0.2:4444');
    expect(sim.b.host.counters.get('tcp.rst.sent')).toBe(1);
    expect(sim.b.host.counters.get('tcp.drop.no-port')).toBe(1);
    expect(c.destroyed).toBe(true);
    expect(a.stats.connections).toBe(0);
    expect(b.stats.connections).toBe(0);
  });

  it('a connection attempt into a black hole ends with ETIMEDOUT', async () => {
    const { a, run, sim } = tcpSim({ impairments: { loss: 1 } });
    const c = a.connect({ host: sim.b.ipv4, port: 80 });
    const t0 = sim.clock.now();
    const err = await run(once<TcpSystemError>(c, 'error'), 600_000);
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.syscall).toBe('connect');
    expect(err.errno).toBe(-110);
    // RFC 6298 §5.5 backoff over the SYN retries: 1+2+4+8+16+32+64 s.
    expect(sim.clock.now() - t0).toBeGreaterThan(60_000);
  });

  it('a hard ICMP error ends a connection attempt (protocol unreachable from a host without TCP)', async () => {
    const { clock, a: ha } = rawHosts();
    const a = new Tcp(ha);
    const c = a.connect({ host: '198.18.0.2', port: 80 });
    const errP = once<TcpSystemError>(c, 'error');
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(1);
    }
    const err = await errP;
    expect(err.code).toBe('ENOPROTOOPT');
    expect(err.syscall).toBe('connect');
    expect(err.icmp).toMatchObject({ kind: 'unreachable', code: 2, reporter: '198.18.0.2' });
    expect(ha.counters.get('tcp.icmp.hard')).toBe(1);
  });

  it('destroy() with unread data resets the connection: the peer sees ECONNRESET on read', async () => {
    const { a, b, run, sim } = tcpSim();
    let serverSide: TcpSocket | undefined;
    const server = b.createServer({ pauseOnConnect: true }, (s: TcpSocket) => {
      serverSide = s;
    });
    server.listen(10);
    const c = a.connect({ host: sim.b.ipv4, port: 10 });
    c.write('hello');
    await run(once(c, 'connect'));
    sim.clock.advance(100);
    await new Promise((r) => setImmediate(r));
    // The server never read the five bytes; closing now resets the connection (RFC 2525 §2.17).
    expect(serverSide!.connection!.readable).toBe(5);
    serverSide!.destroy();
    const err = await run(once<TcpSystemError>(c, 'error'));
    expect(err.code).toBe('ECONNRESET');
    expect(err.syscall).toBe('read');
    expect(err.errno).toBe(-104);
    expect(sim.b.host.counters.get('tcp.rst.sent')).toBe(1);
  });

  it('writing after the peer closed: the reset that answers comes back as EPIPE on write', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer((s: TcpSocket) => {
      s.on('data', () => {});
      // Send, FIN, and close the socket: what arrives afterwards has no reader.
      s.end('done', () => s.destroy());
    });
    server.listen(11);
    const c = a.connect({ host: sim.b.ipv4, port: 11, allowHalfOpen: true });
    c.on('data', () => {});
    await run(once(c, 'end'));
    // The server's socket has gone: its connection is an orphan, and data for it is refused.
    c.write('anyone?');
    const err = await run(once<TcpSystemError>(c, 'error'));
    expect(err.code).toBe('EPIPE');
    expect(err.syscall).toBe('write');
    expect(err.errno).toBe(-32);
    expect(sim.b.host.counters.get('tcp.orphan.reset')).toBe(1);
  });

  it('backpressure both ways: write() returns false, a paused reader closes the window, drain follows', async () => {
    const { a, b, run, sim } = tcpSim();
    let serverSide: TcpSocket | undefined;
    const server = b.createServer({ pauseOnConnect: true }, (s: TcpSocket) => {
      serverSide = s;
    });
    server.listen(12);
    const c = a.connect({ host: sim.b.ipv4, port: 12 });
    await run(once(c, 'connect'));
    const chunk = bytes(64 * 1024);
    const accepted: boolean[] = [];
    for (let i = 0; i < 16; i++) accepted.push(c.write(chunk));
    // The connection takes 256 KiB beyond what is acknowledged, the stream 16 KiB: then write() says stop.
    expect(accepted[0]).toBe(true);
    expect(accepted[15]).toBe(false);
    let drains = 0;
    c.on('drain', () => drains++);
    sim.clock.advance(5_000);
    await new Promise((r) => setImmediate(r));
    // The server reads nothing: its receive buffer (256 KiB) filled and its window closed.
    const sconn = serverSide!.connection!;
    expect(sconn.readable).toBe(256 * 1024);
    expect(sconn.stats.rcvWnd).toBe(0);
    expect(c.connection!.stats.sndWnd).toBe(0);
    expect(c.connection!.sendQueued).toBeGreaterThan(128 * 1024);
    expect(c.writableLength).toBeGreaterThan(0);
    expect(drains).toBe(0);
    // The sender probes the zero window (RFC 9293 §3.8.6.1).
    expect(c.connection!.stats.zeroWindowProbes).toBeGreaterThan(0);
    const got = collect(serverSide!);
    serverSide!.resume();
    await run(once(c, 'drain'));
    c.end();
    const all = await run(got);
    expect(all.length).toBe(16 * chunk.length);
    expect(sha(all)).toBe(sha(Buffer.concat(Array(16).fill(chunk))));
  });

  it("setTimeout emits 'timeout' after idle time, and setKeepAlive probes an idle connection", async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.resume()).listen(13);
    const c = a.connect({ host: sim.b.ipv4, port: 13 });
    await run(once(c, 'connect'));
    const t0 = sim.clock.now();
    c.setTimeout(3_000);
    await run(once(c, 'timeout'));
    expect(sim.clock.now() - t0).toBe(3_000);
    c.setKeepAlive(true, 10_000);
    sim.clock.advance(25_000);
    expect(c.connection!.stats.keepalivesSent).toBeGreaterThanOrEqual(1);
    expect(c.connection!.state).toBe('ESTABLISHED');
  });

  it('setNoDelay lets small writes go at once (Nagle off)', async () => {
    const { a, b, run, sim } = tcpSim();
    const seen: number[] = [];
    b.createServer((s: TcpSocket) => s.on('data', (d: Buffer) => seen.push(d.length))).listen(14);
    const c = a.connect({ host: sim.b.ipv4, port: 14 });
    await run(once(c, 'connect'));
    c.setNoDelay(true);
    const before = c.connection!.stats.segmentsOut;
    c.write('a');
    c.write('b');
    c.write('c');
    await run(new Promise((r) => setImmediate(r)));
    // With Nagle the second and third bytes would wait for the first ACK.
    expect(c.connection!.stats.segmentsOut - before).toBeGreaterThanOrEqual(2);
  });

  it('listen errors: EADDRINUSE and EADDRNOTAVAIL; port 0 picks an ephemeral port', async () => {
    const { b, run } = tcpSim();
    const s1 = b.createServer().listen(80);
    await run(once(s1, 'listening'));
    const s2 = b.createServer().listen(80, '198.18.0.2');
    const e2 = await run(once<TcpSystemError>(s2, 'error'));
    expect(e2.code).toBe('EADDRINUSE');
    expect(e2.syscall).toBe('listen');
    const s3 = b.createServer().listen(81, '198.18.0.99');
    expect((await run(once<TcpSystemError>(s3, 'error'))).code).toBe('EADDRNOTAVAIL');
    const s4 = b.createServer().listen(0, '198.18.0.2');
    await run(once(s4, 'listening'));
    expect(s4.address()!.port).toBeGreaterThanOrEqual(49152);
    const closed = new Promise<void>((r) => s1.close(() => r()));
    await run(closed);
    const s5 = b.createServer().listen(80, '198.18.0.2');
    await run(once(s5, 'listening'));
  });

  it('unknown host names fail like getaddrinfo', async () => {
    const { a, run } = tcpSim();
    const c = a.connect({ host: 'example.invalid', port: 80 });
    const err = await run(once<TcpSystemError>(c, 'error'));
    expect(err.code).toBe('ENOTFOUND');
    expect(err.syscall).toBe('getaddrinfo');
  });

  it('the trace shows the handshake and the state changes', async () => {
    const { a, b, run, sim } = tcpSim();
    const events: TraceEvent[] = [];
    sim.trace.on((e) => {
      if (e.layer === 'tcp') events.push(e);
    });
    b.createServer((s: TcpSocket) => s.end()).listen(15);
    const c = a.connect({ host: sim.b.ipv4, port: 15 });
    c.resume();
    await run(once(c, 'close'));
    const out = events.filter((e) => e.dir === 'out').map((e) => `${e.host} ${e.summary.split(' ')[0]}`);
    expect(out.slice(0, 3)).toEqual(['A SYN', 'B SYN,ACK', 'A ACK']);
    expect(events.some((e) => e.host === 'B' && e.state?.to === 'ESTABLISHED')).toBe(true);
    expect(events.some((e) => e.summary.includes('SYN queue -> accept queue'))).toBe(true);
    expect(events.some((e) => e.summary.includes('accepted: accept queue -> application'))).toBe(true);
  });

  it("loopback: a client and a server on one host, host 'localhost'", async () => {
    const { a, run } = tcpSim();
    const server = a.createServer((s: TcpSocket) => s.pipe(s)).listen(7, 'localhost');
    await run(once(server, 'listening'));
    expect(server.address()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: 7 });
    const c = a.connect(7, 'localhost');
    const got = collect(c);
    c.end('over loopback');
    expect((await run(got)).toString()).toBe('over loopback');
    expect(c.remoteAddress).toBe('127.0.0.1');
    expect(c.localAddress).toBe('127.0.0.1');
  });

  it("server.close waits for its connections; maxConnections refuses extra ones ('drop')", async () => {
    const { a, b, run, sim } = tcpSim();
    const accepted: TcpSocket[] = [];
    const server = b.createServer((s: TcpSocket) => {
      accepted.push(s);
      s.resume();
    });
    server.maxConnections = 1;
    const drops: unknown[] = [];
    server.on('drop', (d) => drops.push(d));
    server.listen(20, sim.b.ipv4);
    const c1 = a.connect({ host: sim.b.ipv4, port: 20 });
    await run(once(c1, 'connect'));
    const c2 = a.connect({ host: sim.b.ipv4, port: 20 });
    c2.on('error', () => {});
    const c2closed = once(c2, 'close');
    c2.resume();
    await run(c2closed);
    expect(drops.length).toBe(1);
    expect(accepted.length).toBe(1);
    const count = await run(new Promise<number>((r) => server.getConnections((_e, n) => r(n))));
    expect(count).toBe(1);
    let closed = false;
    server.close(() => {
      closed = true;
    });
    sim.clock.advance(10);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    expect(server.listening).toBe(false);
    c1.end();
    c1.resume();
    await run(once(server, 'close'));
    expect(closed).toBe(true);
  });

  it('resetAndDestroy sends a RST at once; the peer sees ECONNRESET', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer((s: TcpSocket) => {
      s.on('error', () => {});
      s.resetAndDestroy();
    });
    server.listen(21, sim.b.ipv4);
    const c = a.connect({ host: sim.b.ipv4, port: 21 });
    c.resume();
    const err = await run(once<TcpSystemError>(c, 'error'));
    expect(err.code).toBe('ECONNRESET');
    expect(sim.b.host.counters.get('tcp.rst.sent')).toBe(1);
  });

  it('an orphaned connection in FIN-WAIT-2 is forgotten after finTimeout (Linux tcp_fin_timeout)', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer({ allowHalfOpen: true }, (s: TcpSocket) => s.resume()).listen(22, sim.b.ipv4);
    const c = a.connect({ host: sim.b.ipv4, port: 22 });
    await run(once(c, 'connect'));
    const conn = c.connection!;
    c.destroy();
    sim.clock.advance(1_000);
    // Our FIN was acknowledged; the server keeps its half open and never sends its FIN.
    expect(conn.state).toBe('FIN-WAIT-2');
    expect(a.stats.connections).toBe(1);
    sim.clock.advance(60_000);
    expect(a.stats.connections).toBe(0);
    expect(sim.a.host.counters.get('tcp.orphan.fin-timeout')).toBe(1);
  });

  it('a soft ICMP error during the handshake is what a connection timeout reports (as Linux does)', async () => {
    const { a, run, sim } = tcpSim({ impairments: { loss: 1 } });
    const c = a.connect({ host: sim.b.ipv4, port: 80 });
    const errP = once<TcpSystemError>(c, 'error');
    await new Promise((r) => setImmediate(r));
    const conn = c.connection!;
    const q = new Uint8Array(8);
    const v = new DataView(q.buffer);
    v.setUint16(0, c.localPort!);
    v.setUint16(2, 80);
    v.setUint32(4, conn.iss);
    // Host unreachable (ICMPv4 code 1) is soft (RFC 1122 §4.2.3.9): the attempt goes on...
    a.receiveIcmpError({
      version: 4,
      kind: 'unreachable',
      code: 1,
      reporter: '198.18.0.254',
      src: sim.a.ipv4,
      dst: sim.b.ipv4,
      srcBytes: parseIp(sim.a.ipv4),
      dstBytes: parseIp(sim.b.ipv4),
      protocol: 6,
      quoted: q,
    });
    expect(conn.state).toBe('SYN-SENT');
    // ...and when it times out, the error names the reason.
    const err = await run(errP, 600_000);
    expect(err.code).toBe('EHOSTUNREACH');
    expect(err.syscall).toBe('connect');
  });

  it('a new SYN with a higher sequence number reopens a 4-tuple in TIME-WAIT (RFC 6191)', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => {
      s.resume();
      s.end('bye');
    }).listen(23, sim.b.ipv4);
    const c1 = a.connect({ host: sim.b.ipv4, port: 23, localPort: 40123 });
    c1.resume();
    await run(once(c1, 'close'));
    sim.clock.advance(10);
    // The server closed first: it holds the 4-tuple in TIME-WAIT.
    expect(b.stats.byState['TIME-WAIT']).toBe(1);
    sim.clock.advance(2_000);
    const c2 = a.connect({ host: sim.b.ipv4, port: 23, localPort: 40123 });
    const got = collect(c2);
    expect((await run(got)).toString()).toBe('bye');
    expect(sim.b.host.counters.get('tcp.timewait.reuse')).toBe(1);
  });

  it('beyond maxTimeWait a closing connection skips TIME-WAIT (Linux tcp_max_tw_buckets)', async () => {
    const { a, b, run, sim } = tcpSim({}, { maxTimeWait: 0 });
    b.createServer((s: TcpSocket) => s.pipe(s)).listen(24, sim.b.ipv4);
    const c = a.connect({ host: sim.b.ipv4, port: 24 });
    const got = collect(c);
    c.end('x');
    await run(got);
    sim.clock.advance(10);
    expect(a.stats.connections).toBe(0);
    expect(sim.a.host.counters.get('tcp.timewait.overflow')).toBe(1);
  });

  it('keep-alive finds a peer that vanished: ETIMEDOUT after the unanswered probes (RFC 1122 §4.2.3.6)', async () => {
    const { a, b, run, sim } = tcpSim();
    b.createServer((s: TcpSocket) => s.resume()).listen(25, sim.b.ipv4);
    const c = a.connect({ host: sim.b.ipv4, port: 25, keepAlive: true, keepAliveInitialDelay: 1_000 });
    await run(once(c, 'connect'));
    sim.links[1].close();
    const t0 = sim.clock.now();
    const err = await run(once<TcpSystemError>(c, 'error'), 3_600_000);
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.syscall).toBe('read');
    expect(c.connection!.stats.keepalivesSent).toBe(9);
    // 1 s idle, then 9 probes 75 s apart (Linux's defaults for interval and count).
    expect(sim.clock.now() - t0).toBeGreaterThanOrEqual(1_000 + 9 * 75_000);
  });

  it('two hosts share nothing: a Tcp registers itself as IP protocol 6', () => {
    const h = new Host({ name: 'x', clock: { now: () => 0, setTimer: () => ({ cancel() {} }) } });
    const t = new Tcp(h);
    expect(t.stack).toBe(h);
  });
});
