/**
 * Our TCP as a server, the Linux kernel as the client, over TUN: curl against node:http
 * on our sockets, socat and nc against our echo (RFC 862) and discard (RFC 863) services,
 * python clients for the orderly closes and the aborts, curl's TCP Fast Open against our
 * TFO listener, and a SYN to a port of ours where nothing listens. Every packet goes to a
 * pcap, and tshark (an independent dissector) is the judge of RSTs, TFO SYNs, malformed
 * segments and checksums.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-srv-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import type { TcpServer, TcpSocket } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpOverTcp,
  type TcpService,
  tcpDiscard,
  tcpEcho,
} from '../packages/cli/src/services/tcp-services.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import {
  bash,
  closeProblems,
  exitWithin,
  type KernelProcess,
  kernelSockets,
  kernelTcpExt,
  patternSha256,
  python,
  runInfo,
  seededBytes,
  sha256,
  tcpTunProblems,
  tsharkTransportOnly,
  waitUntil,
} from './support/tcp-tun.ts';
import { tsharkFields } from './support/tshark.ts';

// The PID keeps two runs of this file (two people, or a watcher) from sharing a namespace.
const NS = `sw-tcptun-srv-${process.pid}`;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcptun-srv-'));
const PCAP = path.join(dir, 'session.pcap');
let s: TunSession;
let ns: Netns;
const services: TcpService[] = [];
const servers: TcpServer[] = [];
const procs: KernelProcess[] = [];
let http: TcpService;
let echo: TcpService;
let discard: TcpService;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ss', 'curl', 'socat', 'nc', 'tshark', 'sha256sum', '/usr/bin/python3']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50, pcap: PCAP });
  ns = s.namespace!;
  http = httpOverTcp(s.tcp, 80);
  echo = tcpEcho(s.tcp, 7);
  discard = tcpDiscard(s.tcp, 9);
  services.push(http, echo, discard);
});

afterAll(async () => {
  for (const p of procs) p.kill();
  for (const x of services) x.close();
  for (const x of servers) x.close();
  await s?.close();
  // For a look in Wireshark after a failure: STEPWIRE_KEEP_PCAP=<directory>.
  if (process.env.STEPWIRE_KEEP_PCAP)
    copyFileSync(PCAP, path.join(process.env.STEPWIRE_KEEP_PCAP, 'tcp-tun-server.pcap'));
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

/** A server of ours on `port` for one test; closed in afterAll. */
function server(port: number, onConnection: (sock: TcpSocket) => void, fastOpen = false): TcpServer {
  const srv = s.tcp.createServer({ fastOpen, pauseOnConnect: true }, onConnection);
  srv.listen(port);
  servers.push(srv);
  return srv;
}

/** The states of the kernel's sockets for the connection between its port and our port. */
async function kernelStates(port: number, ourPort: number): Promise<string[]> {
  return (await kernelSockets(ns, port, ourPort)).map((l) => l.split(' ')[0]!);
}

/** The states of our connections between this remote port and our local port. */
function ourStates(remotePort: number, localPort: number): string[] {
  return s.tcp
    .connections()
    .filter((c) => c.remote.port === remotePort && c.local.port === localPort)
    .map((c) => c.state);
}

describe('curl against node:http on our TCP', () => {
  for (const host of ['198.18.0.2', '[fd00:5757::2]']) {
    it(`GET / over ${host.includes(':') ? 'IPv6' : 'IPv4'}`, async () => {
      const r = await ns.run('curl', ['-sS', '--max-time', '10', `http://${host}/`], { timeoutMs: 15_000 });
      expect(r.code, runInfo(r)).toBe(0);
      expect(r.stdout).toMatch(/^Hello from stepwire/);
    });
  }

  it('GET /bytes/4000000: the body hashes to the pattern', async () => {
    const r = await bash(ns, 'curl -sS --max-time 30 http://198.18.0.2/bytes/4000000 | sha256sum', 40_000);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(4_000_000));
  });

  it('POST 3 MB to /sha256 and /echo: our hash and our echo match the file', async () => {
    const file = path.join(dir, 'post.bin');
    const body = seededBytes(3_000_000, 7);
    writeFileSync(file, body);
    let r = await ns.run(
      'curl',
      ['-sS', '--max-time', '30', '--data-binary', `@${file}`, 'http://198.18.0.2/sha256'],
      { timeoutMs: 40_000 },
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim()).toBe(sha256(body));
    r = await bash(
      ns,
      `curl -sS --max-time 30 -H 'content-type: application/octet-stream' --data-binary @${file} http://198.18.0.2/echo | sha256sum`,
      40_000,
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(sha256(body));
  });

  it('keep-alive: three requests on one connection (curl reuses it)', async () => {
    const before = http.connections;
    const r = await ns.run(
      'curl',
      [
        '-sS',
        '--max-time',
        '10',
        '-o',
        '/dev/null',
        '-o',
        '/dev/null',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}\n',
        'http://198.18.0.2/',
        'http://198.18.0.2/bytes/100000',
        'http://198.18.0.2/bytes/7',
      ],
      { timeoutMs: 15_000 },
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['200', '200', '200']);
    expect(http.connections - before).toBe(1);
  });
});

describe('echo (RFC 862) and discard (RFC 863) from kernel clients', () => {
  it('nc: a line comes back, and nc -N half-closes, which our echo answers with its FIN', async () => {
    const r = await ns.run('nc', ['-N', '-w', '5', '198.18.0.2', '7'], {
      input: 'hello, echo\n',
      timeoutMs: 10_000,
    });
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout).toBe('hello, echo\n');
  });

  for (const host of ['198.18.0.2', '[fd00:5757::2]']) {
    it(`socat: 4 MB through our echo over ${host.includes(':') ? 'IPv6' : 'IPv4'} comes back unchanged`, async () => {
      const file = path.join(dir, `echo-${host.length}.bin`);
      const body = seededBytes(4_000_000, host.length);
      writeFileSync(file, body);
      const before = echo.bytesIn;
      const target = host.includes(':') ? `TCP6:${host}:7` : `TCP4:${host}:7`;
      const r = await bash(ns, `socat -t 30 -T 30 - ${target} < ${file} | sha256sum`, 40_000);
      expect(r.code, runInfo(r)).toBe(0);
      expect(r.stdout.split(' ')[0]).toBe(sha256(body));
      expect(echo.bytesIn - before).toBe(body.length);
    });
  }

  it('socat: 4 MB into discard are all read and thrown away; the connection closes cleanly', async () => {
    const file = path.join(dir, 'discard.bin');
    writeFileSync(file, seededBytes(4_000_000, 9));
    const before = discard.bytesIn;
    const r = await ns.run('socat', ['-u', '-T', '30', `OPEN:${file},rdonly`, 'TCP4:198.18.0.2:9'], {
      timeoutMs: 40_000,
    });
    expect(r.code, runInfo(r)).toBe(0);
    expect(await waitUntil(() => discard.bytesIn - before === 4_000_000, 5000)).toBe(true);
  });
});

/** Sends n bytes, half-closes, reads to EOF; prints its port, then 'eof <count> <same?>'. */
const HALF_CLOSE_CLIENT = `
import socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
print('ready', s.getsockname()[1], flush=True)
data = bytes(i % 256 for i in range(n))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
s.close()
print('eof', len(got), got == data, flush=True)
`;

/** Reads to EOF, then closes; prints its port, then what it read. */
const READ_TO_EOF_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print('ready', s.getsockname()[1], flush=True)
got = bytearray()
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
s.close()
print('eof', got.decode(), flush=True)
`;

/** Reads `expect` bytes, then aborts: SO_LINGER {on, 0} makes close() send a RST (RFC 9293 §3.10.5). */
const ABORT_CLIENT = `
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print('ready', s.getsockname()[1], flush=True)
got = b''
while len(got) < int(sys.argv[3]):
    got += s.recv(100)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()
print('aborted', flush=True)
`;

/** Sends a message, then waits for an answer: prints 'reset' if the connection is reset. */
const EXPECT_RESET_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print('ready', s.getsockname()[1], flush=True)
s.sendall(b'data nobody will read')
try:
    d = s.recv(100)
    print('got', d, flush=True)
except ConnectionResetError:
    print('reset', flush=True)
`;

/** Connects to a port where nothing listens: prints 'refused' on ConnectionRefusedError. */
const CONNECT_CLIENT = `
import socket, sys
print('ready', flush=True)
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    print('connected', flush=True)
except ConnectionRefusedError:
    print('refused', flush=True)
except socket.timeout:
    print('timeout', flush=True)
`;

const portOf = (p: KernelProcess) => Number(/^ready (\d+)/m.exec(p.out)?.[1]);

async function kernelRun(script: string, args: string[]): Promise<KernelProcess> {
  const p = await python(ns, script, args);
  procs.push(p);
  return p;
}

// Ports whose segments must carry no RST (checked in the pcap at the end).
const GRACEFUL_PORTS = [7, 9, 80, 5002, 5010];

describe('orderly close (RFC 9293 §3.10.4, §3.6): both ends reach CLOSED, no RST', () => {
  it('the kernel closes first: it sends its FIN, we echo what it sent and answer with ours', async () => {
    const closed = new Promise<void>((resolve) =>
      echo.server.once('connection', (sock) => sock.once('close', () => resolve())),
    );
    const p = await kernelRun(HALF_CLOSE_CLIENT, ['198.18.0.2', '7', '100000']);
    const exit = await p.exited;
    expect(exit.code, p.err).toBe(0);
    expect(p.out).toMatch(/^eof 100000 True$/m);
    await closed;
    const port = portOf(p);
    // The kernel closed first, so its socket waits in TIME-WAIT; ours went LAST-ACK -> CLOSED.
    // One timing lets TIME-WAIT end early: when the kernel's ACKs come late (a loaded
    // machine), our tail loss probe resends the last segment with the FIN; TIME-WAIT answers
    // the duplicate with an ACK that reaches us after our TCB is gone, we answer that with a
    // RST as RFC 9293 §3.10.7.1 requires (Linux does the same), and Linux's TIME-WAIT takes
    // the RST (RFC 1337's hazard; tcp_rfc1337=0). Either way nothing else may be left.
    expect([['TIME-WAIT'], []]).toContainEqual(await kernelStates(port, 7));
    expect(await waitUntil(() => ourStates(port, 7).length === 0, 3000), ourStates(port, 7).join()).toBe(
      true,
    );
  });

  it('we close first: our FIN, the kernel reads EOF and closes; we wait in TIME-WAIT, it keeps nothing', async () => {
    let ours: TcpSocket | undefined;
    const closed = new Promise<void>((resolve) => {
      server(5002, (sock) => {
        ours = sock;
        sock.resume();
        sock.once('close', () => resolve());
        sock.end('bye from stepwire\n');
      });
    });
    const p = await kernelRun(READ_TO_EOF_CLIENT, ['198.18.0.2', '5002']);
    const exit = await p.exited;
    expect(exit.code, p.err).toBe(0);
    expect(p.out).toMatch(/^eof bye from stepwire$/m);
    await closed;
    expect(ours?.destroyed).toBe(true);
    const port = portOf(p);
    expect(ourStates(port, 5002)).toEqual(['TIME-WAIT']);
    // Its LAST-ACK ends with our ACK of its FIN; then it keeps no socket at all.
    let kernel = await kernelStates(port, 5002);
    for (let i = 0; i < 20 && kernel.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      kernel = await kernelStates(port, 5002);
    }
    expect(kernel).toEqual([]);
  });
});

describe('resets (RFC 9293 §3.10.7, §3.10.5)', () => {
  it('the kernel aborts (SO_LINGER 0): our socket errors with ECONNRESET', async () => {
    const err = new Promise<Error>((resolve) => {
      server(5003, (sock) => {
        sock.on('error', resolve);
        sock.resume();
        sock.write('hi');
      });
    });
    const p = await kernelRun(ABORT_CLIENT, ['198.18.0.2', '5003', '2']);
    expect((await p.exited).code, p.err).toBe(0);
    const e = (await err) as NodeJS.ErrnoException;
    expect(e.code).toBe('ECONNRESET');
  });

  it('we destroy() with unread data: a RST, and the kernel client sees ECONNRESET', async () => {
    server(5004, (sock) => {
      sock.on('error', () => {});
      // Paused (pauseOnConnect): wait until the client's bytes sit unread in the connection.
      void waitUntil(() => (sock.connection?.readable ?? 0) > 0, 5000).then(() => sock.destroy());
    });
    const p = await kernelRun(EXPECT_RESET_CLIENT, ['198.18.0.2', '5004']);
    expect((await p.exited).code, p.err).toBe(0);
    expect(p.out).toMatch(/^reset$/m);
  });

  it('we resetAndDestroy() a connection: the kernel client sees ECONNRESET', async () => {
    server(5005, (sock) => {
      sock.on('error', () => {});
      setTimeout(() => sock.resetAndDestroy(), 100);
    });
    const p = await kernelRun(EXPECT_RESET_CLIENT, ['198.18.0.2', '5005']);
    expect((await p.exited).code, p.err).toBe(0);
    expect(p.out).toMatch(/^reset$/m);
  });

  for (const host of ['198.18.0.2', 'fd00:5757::2']) {
    it(`a SYN to a port of ours where nothing listens is refused (${host.includes(':') ? 'IPv6' : 'IPv4'})`, async () => {
      const before = s.host.counters.get('tcp.drop.no-port');
      const p = await kernelRun(CONNECT_CLIENT, [host, '5999']);
      expect((await p.exited).code, p.err).toBe(0);
      expect(p.out).toMatch(/^refused$/m);
      expect(s.host.counters.get('tcp.drop.no-port') - before).toBe(1);
    });
  }
});

/** Sends n bytes (i mod 256), half-closes, waits for EOF; prints 'sent <n>'. */
const SEND_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
print('ready', s.getsockname()[1], flush=True)
n = int(sys.argv[3])
s.sendall(bytes(i % 256 for i in range(n)))
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()
print('sent', n, flush=True)
`;

/** Keep-alive every second from idle: stays idle 3.5 s, then one echo round trip. */
const KEEPALIVE_CLIENT = `
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
print('ready', s.getsockname()[1], flush=True)
time.sleep(3.5)
s.sendall(b'still there?')
print('echo', s.recv(100).decode(), flush=True)
s.close()
`;

describe('flow control and liveness, the kernel as client', () => {
  it('our window closes while the application does not read; the kernel probes it and finishes once we read', async () => {
    const size = 2_000_000;
    let ours: TcpSocket | undefined;
    const got = new Promise<Buffer>((resolve) => {
      server(5010, (sock) => {
        ours = sock;
        const chunks: Buffer[] = [];
        sock.on('data', (d: Buffer) => chunks.push(d));
        sock.once('end', () => {
          sock.end();
          resolve(Buffer.concat(chunks));
        });
      });
    });
    const p = await kernelRun(SEND_CLIENT, ['198.18.0.2', '5010', String(size)]);
    // Paused (pauseOnConnect): the receive buffer fills and the advertised window goes to 0.
    expect(await waitUntil(() => ours?.connection?.stats.rcvWnd === 0, 10_000)).toBe(true);
    // Long enough for the kernel's persist timer (from 200 ms, doubling) to probe twice.
    await new Promise((r) => setTimeout(r, 1500));
    ours!.resume();
    const body = await got;
    expect((await p.exited).code, p.err).toBe(0);
    expect(body.length).toBe(size);
    expect(sha256(body)).toBe(sha256(Buffer.from(Array.from({ length: size }, (_, i) => i % 256))));
    // Linux probes a zero window with a bare ACK at SND.UNA-1 (tcp_xmit_probe_skb), which
    // tshark labels a keep-alive; we answer with an ACK that shows our window still 0 (at
    // most one per 500 ms, as Linux rate-limits replies to out-of-window segments).
    const port = portOf(p);
    const probes = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == ${port} && tcp.dstport == 5010 && tcp.analysis.keep_alive`,
      extra: tsharkTransportOnly(),
    });
    const answers = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == 5010 && tcp.dstport == ${port} && tcp.window_size == 0 && tcp.len == 0`,
      extra: tsharkTransportOnly(),
    });
    expect(probes.length).toBeGreaterThanOrEqual(2);
    expect(answers.length).toBeGreaterThanOrEqual(2);
  });

  it("the kernel's keep-alive probes (SO_KEEPALIVE, 1 s) get our ACKs and the connection lives on", async () => {
    const p = await kernelRun(KEEPALIVE_CLIENT, ['198.18.0.2', '7']);
    expect((await exitWithin(p, 15_000)).code, p.err).toBe(0);
    expect(p.out).toMatch(/^echo still there\?$/m);
    const port = portOf(p);
    const probes = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == ${port} && tcp.dstport == 7 && tcp.analysis.keep_alive`,
      extra: tsharkTransportOnly(),
    });
    // Our answer to the first probe also opens our window past the SYN-ACK's 64 KiB, so
    // tshark calls it a window update rather than a keep-alive ACK.
    const acks = tsharkFields(PCAP, ['frame.number'], {
      filter: `tcp.srcport == 7 && tcp.dstport == ${port} && tcp.len == 0 && (tcp.analysis.keep_alive_ack || tcp.analysis.window_update)`,
      extra: tsharkTransportOnly(),
    });
    expect(probes.length).toBeGreaterThanOrEqual(2);
    expect(acks.length).toBe(probes.length);
  });

  it('50 curl clients, 25 at a time, each get their 100 kB', async () => {
    const before = http.connections;
    const r = await bash(
      ns,
      `seq 1 50 | xargs -P 25 -I{} curl -sS --max-time 20 -o /dev/null -w '%{http_code} %{size_download}\\n' http://198.18.0.2/bytes/100000`,
      40_000,
    );
    expect(r.code, runInfo(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(50);
    expect(new Set(lines)).toEqual(new Set(['200 100000']));
    expect(http.connections - before).toBe(50);
  });
});

describe('TCP Fast Open (RFC 7413): curl --tcp-fastopen against our TFO listener', () => {
  it('the first connection gets a cookie, the second carries the request in its SYN', async () => {
    // Client and server TFO for the namespace's kernel only (net.ipv4.tcp_fastopen is per namespace).
    const rootBefore = readFileSync('/proc/sys/net/ipv4/tcp_fastopen', 'utf8');
    const set = await ns.run('sysctl', ['-w', 'net.ipv4.tcp_fastopen=3']);
    expect(set.code, runInfo(set)).toBe(0);
    expect(readFileSync('/proc/sys/net/ipv4/tcp_fastopen', 'utf8')).toBe(rootBefore);
    const tfo = httpOverTcp(s.tcp, 5006, undefined, { server: { fastOpen: true } });
    services.push(tfo);
    const before = await kernelTcpExt(ns);
    for (let i = 0; i < 2; i++) {
      const r = await ns.run(
        'curl',
        ['-sS', '--max-time', '10', '--tcp-fastopen', 'http://198.18.0.2:5006/'],
        {
          timeoutMs: 15_000,
        },
      );
      expect(r.code, runInfo(r)).toBe(0);
      expect(r.stdout).toMatch(/^Hello from stepwire/);
    }
    const after = await kernelTcpExt(ns);
    // The kernel counts a connection whose SYN data the server acknowledged (TCPFastOpenActive).
    expect((after.TCPFastOpenActive ?? 0) - (before.TCPFastOpenActive ?? 0)).toBe(1);
    expect((after.TCPFastOpenActiveFail ?? 0) - (before.TCPFastOpenActiveFail ?? 0)).toBe(0);
    // Wireshark's view: two SYNs to 5006 with the TFO option; the first asks (empty
    // cookie), the second carries a cookie and the HTTP request.
    const syns = tsharkFields(PCAP, ['tcp.len', 'tcp.options.tfo.cookie', 'tcp.options.tfo.request'], {
      filter: 'tcp.dstport == 5006 && tcp.flags.syn == 1 && tcp.flags.ack == 0',
      extra: tsharkTransportOnly(),
    });
    expect(syns).toHaveLength(2);
    expect(syns[0]!['tcp.len']).toBe('0');
    expect(syns[0]!['tcp.options.tfo.request']).not.toBe('');
    expect(Number(syns[1]!['tcp.len'])).toBeGreaterThan(0);
    expect(syns[1]!['tcp.options.tfo.cookie']).toMatch(/^[0-9a-f:]{8,}/);
    // Our SYN-ACKs: the first carries the cookie; the second acknowledges the SYN's data.
    const synAcks = tsharkFields(PCAP, ['tcp.ack', 'tcp.options.tfo.cookie'], {
      filter: 'tcp.srcport == 5006 && tcp.flags.syn == 1 && tcp.flags.ack == 1',
      extra: ['-o', 'tcp.relative_sequence_numbers:TRUE', ...tsharkTransportOnly()],
    });
    expect(synAcks).toHaveLength(2);
    expect(synAcks[0]!['tcp.options.tfo.cookie']).not.toBe('');
    expect(Number(synAcks[1]!['tcp.ack'])).toBe(1 + Number(syns[1]!['tcp.len']));
  });
});

describe('the pcap of the whole session, through tshark', () => {
  it('no malformed segment, no bad checksum, no RST on the connections that closed in order', async () => {
    // Close first, so that every packet is in the file.
    for (const x of services) x.close();
    await s.close();
    // Every connection that was meant to close in order did: a FIN each way, each FIN
    // acknowledged, no RST before (tshark's reading of the capture, checked per stream).
    expect(closeProblems(PCAP, GRACEFUL_PORTS)).toEqual([]);
    // Nothing malformed, no bad checksum, no lost or misordered segment on this lossless
    // link; what TCP does by design (flow control, asked-for resets) is not a problem.
    expect(tcpTunProblems(PCAP, s.kernel)).toEqual([]);
    const resets = tsharkFields(PCAP, ['tcp.srcport'], {
      filter: 'tcp.flags.reset == 1',
      extra: tsharkTransportOnly(),
    });
    expect(resets.length).toBeGreaterThanOrEqual(4);
  });
});
