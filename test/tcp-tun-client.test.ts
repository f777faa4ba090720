/**
 * Our TCP as a client, the Linux kernel as the server, over TUN: our sockets against a
 * socat echo and a python echo, node:http's client over our socket against python's
 * http.server, a kernel-side sink that hashes what we send, orderly closes and aborts
 * from each side, connection refused, and our TCP Fast Open client against the kernel's
 * TFO server (cookie obtained, then used). tshark reads the session's pcap at the end.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-cli-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import type { TcpSocket } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import {
  closeProblems,
  exitWithin,
  type KernelProcess,
  kernelSockets,
  kernelTcpExt,
  python,
  runInfo,
  SINK_SERVER,
  seededBytes,
  sha256,
  tcpTunProblems,
  track,
  tsharkTransportOnly,
  waitListening,
  waitUntil,
} from './support/tcp-tun.ts';
import { tsharkFields } from './support/tshark.ts';

// The PID keeps two runs of this file (two people, or a watcher) from sharing a namespace.
const NS = `sw-tcptun-cli-${process.pid}`;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcptun-cli-'));
const PCAP = path.join(dir, 'session.pcap');
let s: TunSession;
let ns: Netns;
const procs: KernelProcess[] = [];
const sockets: TcpSocket[] = [];

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ss', 'socat', 'tshark', '/usr/bin/python3']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50, pcap: PCAP });
  ns = s.namespace!;
});

afterAll(async () => {
  for (const x of sockets) x.destroy();
  for (const p of procs) p.kill();
  await s?.close();
  if (process.env.STEPWIRE_KEEP_PCAP)
    copyFileSync(PCAP, path.join(process.env.STEPWIRE_KEEP_PCAP, 'tcp-tun-client.pcap'));
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

async function kernel(script: string, args: string[] = []): Promise<KernelProcess> {
  const p = await python(ns, script, args);
  procs.push(p);
  return p;
}

function connect(host: string, port: number, opts: { fastOpen?: boolean; allowHalfOpen?: boolean } = {}) {
  const sock = s.tcp.connect({ host, port, ...opts });
  sockets.push(sock);
  return sock;
}

/** Everything the socket reads until 'end', and how it ended ('close' after 'end', or an error). */
function readAll(sock: TcpSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('error', reject);
    sock.once('end', () => resolve(Buffer.concat(chunks)));
  });
}

const closed = (sock: TcpSocket) =>
  new Promise<void>((resolve) => {
    if (sock.destroyed && sock.closed) resolve();
    else sock.once('close', () => resolve());
  });

const errorOf = (sock: TcpSocket) =>
  new Promise<NodeJS.ErrnoException>((resolve) => sock.once('error', resolve));

/** Echoes one connection on (address, port) to EOF, then closes (the IPv6 echo). */
const ECHO_SERVER = `
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
l = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(4)
l.settimeout(20)
print('ready', flush=True)
c, _ = l.accept()
c.settimeout(20)
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
c.close()
`;

/**
 * One connection; mode 'read-eof': read to EOF (our FIN first), then close; 'close-first':
 * send 'bye' and close at once (its FIN first), then nothing; 'abort': read a byte, then
 * close with SO_LINGER {on, 0} (a RST); 'expect-reset': read until the connection is reset,
 * printing 'reset'. Prints its peer's port after accept.
 */
const ONE_CONNECTION_SERVER = `
import socket, struct, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(4)
l.settimeout(20)
print('ready', flush=True)
c, peer = l.accept()
c.settimeout(20)
print('peer', peer[1], flush=True)
if mode == 'read-eof':
    n = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        n += len(d)
    print('eof', n, flush=True)
    c.close()
elif mode == 'close-first':
    c.sendall(b'bye')
    c.close()
elif mode == 'abort':
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
elif mode == 'expect-reset':
    try:
        while c.recv(65536):
            pass
        print('eof', flush=True)
    except ConnectionResetError:
        print('reset', flush=True)
`;

/** A TFO server (TCP_FASTOPEN on the listener): for each of n connections, answer 'echo:' + data. */
const TFO_SERVER = `
import socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
l.bind((addr, port))
l.listen(16)
l.settimeout(20)
print('ready', flush=True)
for _ in range(n):
    c, _ = l.accept()
    c.settimeout(10)
    d = c.recv(65536)
    c.sendall(b'echo:' + d)
    c.close()
print('done', flush=True)
`;

const GRACEFUL_PORTS = [40001, 40002, 40003, 40004, 40005, 40006, 40011, 40012, 40014];

describe('our sockets against kernel echo servers', () => {
  it('socat EXEC:cat (IPv4): 2 MB written, half-closed, all of it read back, then its FIN', async () => {
    const socat = track(
      ns.spawn('socat', ['-t', '10', '-T', '20', 'TCP4-LISTEN:40001,bind=198.18.0.1,reuseaddr', 'EXEC:cat']),
    );
    procs.push(socat);
    await waitListening(ns, 40001);
    const body = seededBytes(2_000_000, 61);
    const sock = connect('198.18.0.1', 40001, { allowHalfOpen: true });
    const back = readAll(sock);
    sock.end(body);
    expect(sha256(await back)).toBe(sha256(body));
    await closed(sock);
    expect((await exitWithin(socat, 10_000)).code, socat.err).toBe(0);
  });

  it('python echo (IPv6): 1 MB in and back', async () => {
    const p = await kernel(ECHO_SERVER, ['fd00:5757::1', '40002']);
    const body = seededBytes(1_000_000, 62);
    const sock = connect('fd00:5757::1', 40002, { allowHalfOpen: true });
    const back = readAll(sock);
    sock.end(body);
    expect(sha256(await back)).toBe(sha256(body));
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
  });

  it('2 MB to a kernel sink that hashes what it reads', async () => {
    const p = await kernel(SINK_SERVER, ['198.18.0.1', '40003']);
    const body = seededBytes(2_000_000, 63);
    const sock = connect('198.18.0.1', 40003);
    sock.resume();
    sock.end(body);
    expect((await exitWithin(p, 20_000)).code, p.err).toBe(0);
    expect(p.out).toContain(`sha256 ${sha256(body)} ${body.length}`);
    await closed(sock);
  });

  it("node:http's client over our socket: python's http.server sends a 2 MB file", async () => {
    const file = path.join(dir, 'page.bin');
    const body = seededBytes(2_000_000, 64);
    writeFileSync(file, body);
    const server = track(
      ns.spawn('/usr/bin/python3', [
        '-m',
        'http.server',
        '40004',
        '--bind',
        '198.18.0.1',
        '--directory',
        dir,
      ]),
    );
    procs.push(server);
    await waitListening(ns, 40004);
    const got = await httpGet(40004, '/page.bin');
    expect(got.status, server.err).toBe(200);
    expect(sha256(got.body)).toBe(sha256(body));
    server.kill();
  });
});

/**
 * GET over our TCP with node:http. No `agent` option: with `agent: false` node:http makes a
 * fresh Agent, which ignores createConnection and opens a kernel socket instead.
 */
function httpGet(port: number, urlPath: string): Promise<{ status: number; body: Buffer }> {
  let ours = false;
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '198.18.0.1',
        port,
        path: urlPath,
        createConnection: () => {
          ours = true;
          return connect('198.18.0.1', port) as never;
        },
      },
      (res) => {
        if (!ours) reject(new Error('node:http answered over a socket that is not ours'));
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

describe('orderly close from each side (RFC 9293 §3.10.4, §3.6)', () => {
  it('we close first: the kernel reads EOF and closes; we end in TIME-WAIT, it keeps nothing', async () => {
    const p = await kernel(ONE_CONNECTION_SERVER, ['198.18.0.1', '40005', 'read-eof']);
    const sock = connect('198.18.0.1', 40005);
    const ended = readAll(sock);
    sock.end('0123456789');
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    expect(p.out).toMatch(/^eof 10$/m);
    expect((await ended).length).toBe(0);
    await closed(sock);
    const tuple = s.tcp.connections().filter((c) => c.remote.port === 40005);
    expect(tuple.map((c) => c.state)).toEqual(['TIME-WAIT']);
    const ours = tuple[0]!.local.port;
    let k = await kernelSockets(ns, 40005, ours);
    for (let i = 0; i < 20 && k.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      k = await kernelSockets(ns, 40005, ours);
    }
    expect(k).toEqual([]);
  });

  it('the kernel closes first: we read its FIN, answer with ours and reach CLOSED; it waits in TIME-WAIT', async () => {
    const p = await kernel(ONE_CONNECTION_SERVER, ['198.18.0.1', '40006', 'close-first']);
    const sock = connect('198.18.0.1', 40006);
    expect((await readAll(sock)).toString()).toBe('bye');
    await closed(sock);
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    expect(
      await waitUntil(() => s.tcp.connections().every((c) => c.remote.port !== 40006), 3000),
      s.tcp
        .connections()
        .map((c) => `${c.remote.port} ${c.state}`)
        .join(),
    ).toBe(true);
    const k = await kernelSockets(ns, 40006, sock.localPort!);
    expect(k.map((l) => l.split(' ')[0])).toEqual(['TIME-WAIT']);
  });
});

describe('resets', () => {
  it('the kernel aborts (SO_LINGER 0): our socket errors with ECONNRESET', async () => {
    const p = await kernel(ONE_CONNECTION_SERVER, ['198.18.0.1', '40007', 'abort']);
    const sock = connect('198.18.0.1', 40007);
    const err = errorOf(sock);
    sock.write('x');
    const e = await err;
    expect(e.code).toBe('ECONNRESET');
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
  });

  it('we resetAndDestroy(): the kernel server sees ECONNRESET', async () => {
    const p = await kernel(ONE_CONNECTION_SERVER, ['198.18.0.1', '40008', 'expect-reset']);
    const sock = connect('198.18.0.1', 40008);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('some data, then an abort');
    await waitUntil(() => /^peer/m.test(p.out), 5000);
    sock.resetAndDestroy();
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    expect(p.out).toMatch(/^reset$/m);
  });

  for (const host of ['198.18.0.1', 'fd00:5757::1']) {
    it(`connecting to a closed kernel port gives ECONNREFUSED (${host.includes(':') ? 'IPv6' : 'IPv4'})`, async () => {
      const sock = connect(host, 6999);
      const e = await errorOf(sock);
      expect(e.code).toBe('ECONNREFUSED');
      expect(e.syscall).toBe('connect');
    });
  }
});

/** A reader that falls behind: tiny receive buffer, 2 s before the first read; hashes to EOF. */
const SLOW_SINK = `
import hashlib, socket, sys, time
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(4)
l.settimeout(20)
print('ready', flush=True)
c, _ = l.accept()
c.settimeout(20)
time.sleep(2)
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    h.update(d)
    n += len(d)
c.close()
print('sha256', h.hexdigest(), n, flush=True)
`;

/** Accepts, stays silent for 2.5 s, then says 'bye' and closes. */
const IDLE_SERVER = `
import socket, sys, time
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(4)
l.settimeout(20)
print('ready', flush=True)
c, _ = l.accept()
time.sleep(2.5)
c.sendall(b'bye')
c.close()
`;

describe('flow control and liveness, the kernel as server', () => {
  it("the kernel's reader falls behind: its window closes, our persist timer probes (RFC 9293 §3.8.6.1), all 1 MB arrives", async () => {
    const p = await kernel(SLOW_SINK, ['198.18.0.1', '40011']);
    const body = seededBytes(1_000_000, 11);
    const sock = connect('198.18.0.1', 40011);
    sock.resume();
    sock.end(body);
    expect((await exitWithin(p, 20_000)).code, p.err).toBe(0);
    expect(p.out).toContain(`sha256 ${sha256(body)} ${body.length}`);
    await closed(sock);
    expect(sock.connection?.stats.zeroWindowProbes).toBeGreaterThanOrEqual(1);
    const zero = tsharkFields(PCAP, ['frame.number'], {
      filter: 'tcp.srcport == 40011 && tcp.window_size == 0',
      extra: tsharkTransportOnly(),
    });
    expect(zero.length).toBeGreaterThanOrEqual(1);
  });

  it("our keep-alive probes (idle 600 ms) draw the kernel's ACKs while its server is silent", async () => {
    const p = await kernel(IDLE_SERVER, ['198.18.0.1', '40012']);
    const sock = s.tcp.connect({
      host: '198.18.0.1',
      port: 40012,
      // An answered probe counts as activity, so the next one comes after `idle` again (as
      // on Linux; `interval` spaces unanswered ones). Linux answers out-of-window segments,
      // which a keep-alive at SND.UNA-1 is, at most once per 500 ms (tcp_invalid_ratelimit).
      tcp: { keepalive: { idle: 600, interval: 600, count: 4 } },
    });
    sockets.push(sock);
    expect((await readAll(sock)).toString()).toBe('bye');
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    const port = sock.localPort!;
    const probes = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == ${port} && tcp.dstport == 40012 && tcp.analysis.keep_alive`,
      extra: tsharkTransportOnly(),
    });
    // The kernel's first answer also opens its window past the SYN-ACK's (a window update).
    const acks = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == 40012 && tcp.dstport == ${port} && tcp.len == 0 && (tcp.analysis.keep_alive_ack || tcp.analysis.window_update)`,
      extra: tsharkTransportOnly(),
    });
    expect(probes.length).toBeGreaterThanOrEqual(2);
    expect(acks.length).toBe(probes.length);
  });
});

describe('the kernel answering with SYN cookies', () => {
  it('tcp_syncookies=2 (always): our client completes the handshake on a cookie and 1 MB echoes intact', async () => {
    const set = await ns.run('sysctl', ['-w', 'net.ipv4.tcp_syncookies=2']);
    expect(set.code, runInfo(set)).toBe(0);
    try {
      const before = await kernelTcpExt(ns);
      const p = await kernel(ECHO_SERVER, ['198.18.0.1', '40014']);
      const body = seededBytes(1_000_000, 14);
      const sock = connect('198.18.0.1', 40014, { allowHalfOpen: true });
      const back = readAll(sock);
      sock.end(body);
      expect(sha256(await back)).toBe(sha256(body));
      expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
      const after = await kernelTcpExt(ns);
      // The kernel sent a cookie and took our ACK as a valid one (its options rode in the
      // timestamp, RFC 4987 §3.6 as Linux does it).
      expect((after.SyncookiesSent ?? 0) - (before.SyncookiesSent ?? 0)).toBe(1);
      expect((after.SyncookiesRecv ?? 0) - (before.SyncookiesRecv ?? 0)).toBe(1);
      expect((after.SyncookiesFailed ?? 0) - (before.SyncookiesFailed ?? 0)).toBe(0);
    } finally {
      await ns.run('sysctl', ['-w', 'net.ipv4.tcp_syncookies=1']);
    }
  });
});

describe("TCP Fast Open (RFC 7413): our client against the kernel's TFO server", () => {
  it('the first connection obtains a cookie, the second sends its data in the SYN', async () => {
    const set = await ns.run('sysctl', ['-w', 'net.ipv4.tcp_fastopen=3']);
    expect(set.code, runInfo(set)).toBe(0);
    const p = await kernel(TFO_SERVER, ['198.18.0.1', '40010', '2']);
    const before = await kernelTcpExt(ns);
    for (let i = 0; i < 2; i++) {
      const sock = connect('198.18.0.1', 40010, { fastOpen: true });
      sock.write(`hello ${i}`);
      expect((await readAll(sock)).toString()).toBe(`echo:hello ${i}`);
      await closed(sock);
      if (i === 0) expect(s.tcp.fastOpenCache.get('198.18.0.1')?.cookie.length).toBeGreaterThanOrEqual(4);
    }
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    const after = await kernelTcpExt(ns);
    // The kernel counts SYNs whose data it accepted with a valid cookie.
    expect((after.TCPFastOpenPassive ?? 0) - (before.TCPFastOpenPassive ?? 0)).toBe(1);
    expect((after.TCPFastOpenPassiveFail ?? 0) - (before.TCPFastOpenPassiveFail ?? 0)).toBe(0);
    expect((after.TCPFastOpenCookieReqd ?? 0) - (before.TCPFastOpenCookieReqd ?? 0)).toBe(1);
    const syns = tsharkFields(PCAP, ['tcp.len', 'tcp.options.tfo.cookie', 'tcp.options.tfo.request'], {
      filter: 'tcp.dstport == 40010 && tcp.flags.syn == 1 && tcp.flags.ack == 0',
      extra: tsharkTransportOnly(),
    });
    expect(syns).toHaveLength(2);
    expect(syns[0]!['tcp.len']).toBe('0');
    expect(syns[0]!['tcp.options.tfo.request']).not.toBe('');
    expect(syns[1]!['tcp.len']).toBe(String('hello 1'.length));
    expect(syns[1]!['tcp.options.tfo.cookie']).not.toBe('');
  });

  it('after the kernel changes its TFO key, our stale cookie is refused: the data goes again after the handshake, and the new cookie works', async () => {
    // The cookie from the test above is in our cache; a new key (per namespace) voids it.
    expect(s.tcp.fastOpenCache.get('198.18.0.1')).toBeDefined();
    const oldCookie = Buffer.from(s.tcp.fastOpenCache.get('198.18.0.1')!.cookie).toString('hex');
    const key = await ns.run('sysctl', [
      '-w',
      'net.ipv4.tcp_fastopen_key=01234567-89abcdef-01234567-89abcdef',
    ]);
    expect(key.code, runInfo(key)).toBe(0);
    const p = await kernel(TFO_SERVER, ['198.18.0.1', '40013', '2']);
    const before = await kernelTcpExt(ns);
    for (let i = 0; i < 2; i++) {
      const sock = connect('198.18.0.1', 40013, { fastOpen: true });
      sock.write(`again ${i}`);
      expect((await readAll(sock)).toString()).toBe(`echo:again ${i}`);
      await closed(sock);
    }
    expect((await exitWithin(p, 10_000)).code, p.err).toBe(0);
    const after = await kernelTcpExt(ns);
    // RFC 7413 §4.2.2: the first SYN's data is not accepted (a fail), the second's is.
    expect((after.TCPFastOpenPassiveFail ?? 0) - (before.TCPFastOpenPassiveFail ?? 0)).toBe(1);
    expect((after.TCPFastOpenPassive ?? 0) - (before.TCPFastOpenPassive ?? 0)).toBe(1);
    const newCookie = Buffer.from(s.tcp.fastOpenCache.get('198.18.0.1')!.cookie).toString('hex');
    expect(newCookie).not.toBe(oldCookie);
    const syns = tsharkFields(PCAP, ['tcp.len'], {
      filter: 'tcp.dstport == 40013 && tcp.flags.syn == 1 && tcp.flags.ack == 0',
      extra: tsharkTransportOnly(),
    });
    expect(syns.map((r) => r['tcp.len'])).toEqual([String('again 0'.length), String('again 1'.length)]);
  });
});

describe('the pcap of the whole session, through tshark', () => {
  it('no malformed segment, no bad checksum, no RST on the connections that closed in order', async () => {
    for (const x of sockets) x.destroy();
    await s.close();
    // Every connection that was meant to close in order did: a FIN each way, each FIN
    // acknowledged, no RST before (tshark's reading of the capture, checked per stream).
    expect(closeProblems(PCAP, GRACEFUL_PORTS)).toEqual([]);
    // Nothing malformed, no bad checksum, no lost or misordered segment on this lossless
    // link; what TCP does by design (flow control, asked-for resets) is not a problem.
    expect(tcpTunProblems(PCAP, s.kernel)).toEqual([]);
  });
});
