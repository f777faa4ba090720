/**
 * Classic ECN (RFC 3168) and urgent data (RFC 9293 §3.8.5) between our TCP and the Linux
 * kernel over TUN.
 *
 * ECN: the namespace runs with net.ipv4.tcp_ecn = 1 (the kernel asks for ECN and accepts
 * it; the sysctl is per namespace); our session's connections use `ecn: true`. The link
 * between the device and our stack marks 1% of ECN-capable packets CE in each direction
 * (impair's ceMark; nothing is dropped). Every packet is decoded from a tap on the
 * device, so the flags checked are what crossed the wire: both handshakes negotiate
 * (ECE+CWR SYN, ECE SYN-ACK), data goes ECT(0), marks are echoed with ECE and answered
 * with CWR by both TCPs, and our sender reduces its window without retransmitting.
 *
 * Urgent data: the kernel's send(MSG_OOB) reaches our socket inline with an 'urgent'
 * event at the right offset, and our writeUrgent reaches a kernel reader's
 * recv(MSG_OOB) — which takes the byte just before the urgent pointer, so it only comes
 * out right if our pointer follows RFC 9293 / RFC 6093 as Linux reads it.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-ecn-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */
import { impair, type Netns, netnsExists } from '@stepwire/link';
import type { TcpConnection, TcpSocket } from '@stepwire/tcp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import {
  exitWithin,
  type KernelProcess,
  python,
  runInfo,
  SINK_SERVER,
  seededBytes,
  sha256,
  waitUntil,
} from './support/tcp-tun.ts';

const NS = `sw-tcptun-ecn-${process.pid}`;
const MARK = { ceMark: 0.01 } as const;
const FIN = 0x01;
const SYN = 0x02;
const ACK = 0x10;
const URG = 0x20;
const ECE = 0x40;
const CWR = 0x80;

/** One TCP/IPv4 packet as the tap saw it. */
interface Seen {
  dir: 'in' | 'out';
  ecn: number;
  flags: number;
  len: number;
  sport: number;
  dport: number;
  urp: number;
}

let s: TunSession;
let ns: Netns;
const seen: Seen[] = [];
const procs: KernelProcess[] = [];
const sockets: TcpSocket[] = [];

function decode(dir: 'in' | 'out', p: Uint8Array): void {
  if (p.length < 40 || p[0]! >> 4 !== 4 || p[9] !== 6) return;
  const ihl = (p[0]! & 15) * 4;
  const total = (p[2]! << 8) | p[3]!;
  const t = ihl;
  seen.push({
    dir,
    ecn: p[1]! & 3,
    flags: p[t + 13]!,
    len: total - ihl - (p[t + 12]! >> 4) * 4,
    sport: (p[t]! << 8) | p[t + 1]!,
    dport: (p[t + 2]! << 8) | p[t + 3]!,
    urp: (p[t + 18]! << 8) | p[t + 19]!,
  });
}

beforeAll(async () => {
  requireRootAndPrograms(['ip', 'sysctl', '/usr/bin/python3']);
  s = TunSession.open({
    netns: NS,
    replace: true,
    pollTimeoutMs: 50,
    tcp: { connection: { ecn: true } },
    tap: (dir, packet) => decode(dir, packet),
    wrapLink: (link, clock) => impair(link, { ...MARK, seed: 3168, receive: MARK }, clock),
  });
  ns = s.namespace!;
  const r = await ns.run('sysctl', ['-w', 'net.ipv4.tcp_ecn=1'], { timeoutMs: 5000 });
  expect(r.code, runInfo(r)).toBe(0);
});

afterAll(async () => {
  for (const x of sockets) x.destroy();
  for (const p of procs) p.kill();
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

/** Packets of the connection between our port `ours` and the kernel's port `theirs`. */
function flow(ours: number, theirs: number): Seen[] {
  return seen.filter(
    (x) =>
      (x.dir === 'out' && x.sport === ours && x.dport === theirs) ||
      (x.dir === 'in' && x.sport === theirs && x.dport === ours),
  );
}

const CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
s.settimeout(30)
print('ready', flush=True)
buf = bytes(range(256)) * 4096
for _ in range(int(sys.argv[3])):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print('done', flush=True)
`;

describe('classic ECN with the kernel (net.ipv4.tcp_ecn = 1), 1% CE marks each way', () => {
  it('kernel -> us: ECN negotiated, kernel data ECT(0), our ECE answered by the kernel with CWR', async () => {
    const PORT = 7001;
    let conn: TcpConnection | undefined;
    let got = 0;
    const ended = new Promise<void>((resolve) => {
      const srv = s.tcp.createServer((sock) => {
        conn = sock.connection;
        sock.on('data', (d: Buffer) => {
          got += d.length;
        });
        sock.on('end', () => {
          sock.end();
          srv.close();
          resolve();
        });
      });
      srv.listen(PORT);
    });
    const MIB = 8;
    const p = await python(ns, CLIENT, [s.ours.v4, String(PORT), String(MIB)]);
    procs.push(p);
    const exit = await exitWithin(p, 60_000);
    await ended;
    expect(exit.code, p.err).toBe(0);
    expect(got).toBe(MIB << 20);

    const f = flow(PORT, seen.find((x) => x.dir === 'in' && x.dport === PORT && x.flags & SYN)!.sport);
    const syn = f.find((x) => x.dir === 'in' && (x.flags & (SYN | ACK)) === SYN)!;
    const synAck = f.find((x) => x.dir === 'out' && (x.flags & (SYN | ACK)) === (SYN | ACK))!;
    expect(syn.flags & (ECE | CWR)).toBe(ECE | CWR); // the kernel's ECN-setup SYN
    expect(synAck.flags & (ECE | CWR)).toBe(ECE); // our ECN-setup SYN-ACK
    expect([syn.ecn, synAck.ecn]).toEqual([0, 0]); // SYNs are never ECN-capable (§6.1.1)
    const data = f.filter((x) => x.dir === 'in' && x.len > 0);
    expect(data.length).toBeGreaterThan(100);
    // The tap sees the kernel's packets before our link marks them: ECT(0), apart from
    // any retransmission (none expected: nothing is dropped).
    expect(data.filter((x) => x.ecn === 2).length).toBeGreaterThan(data.length * 0.95);
    expect(conn?.stats.ecn).toBe(true);
    expect(conn?.stats.ecnCeReceived).toBeGreaterThan(0);
    // We echoed with ECE; the kernel reduced and said so with CWR (RFC 3168 §6.1.2-3).
    expect(f.filter((x) => x.dir === 'out' && x.flags & ECE && !(x.flags & SYN)).length).toBeGreaterThan(0);
    expect(f.filter((x) => x.dir === 'in' && x.flags & CWR && !(x.flags & SYN)).length).toBeGreaterThan(0);
    // Our pure ACKs are Not-ECT.
    expect(f.filter((x) => x.dir === 'out' && x.len === 0 && x.ecn !== 0)).toEqual([]);
  });

  it('us -> kernel: ECN negotiated, our data ECT(0), the kernel echoes marks and we reduce without retransmitting', async () => {
    const PORT = 40091;
    const p = await python(ns, SINK_SERVER, [s.kernel.v4, String(PORT)]);
    procs.push(p);
    const body = seededBytes(8 << 20, 3168);
    const sock = s.tcp.connect({ host: s.kernel.v4, port: PORT });
    sockets.push(sock);
    let conn: TcpConnection | undefined;
    sock.on('connect', () => {
      conn = sock.connection;
    });
    sock.resume();
    sock.end(body);
    const exit = await exitWithin(p, 60_000);
    expect(exit.code, p.err).toBe(0);
    expect(p.out).toContain(`sha256 ${sha256(body)} ${body.length}`);
    await waitUntil(() => conn?.state !== 'ESTABLISHED', 5000);
    const ours = sock.localPort!;
    const f = flow(ours, PORT);
    const syn = f.find((x) => x.dir === 'out' && (x.flags & (SYN | ACK)) === SYN)!;
    const synAck = f.find((x) => x.dir === 'in' && (x.flags & (SYN | ACK)) === (SYN | ACK))!;
    expect(syn.flags & (ECE | CWR)).toBe(ECE | CWR);
    expect(synAck.flags & (ECE | CWR)).toBe(ECE); // the kernel agreed
    const data = f.filter((x) => x.dir === 'out' && x.len > 0);
    const st = conn!.stats;
    // After our link: ECT(0), or CE where it marked. Only a retransmission is Not-ECT
    // (§6.1.5); nothing is lost on this link, so there are none unless a probe timer ran
    // early on a machine too busy to read ACKs in time.
    expect(data.filter((x) => x.ecn !== 2 && x.ecn !== 3).length).toBe(st.retransmits);
    const marked = data.filter((x) => x.ecn === 3).length;
    expect(marked).toBeGreaterThan(5);
    expect(f.filter((x) => x.dir === 'in' && x.flags & ECE && !(x.flags & SYN)).length).toBeGreaterThan(0);
    expect(st.ecnReductions).toBeGreaterThan(0);
    expect(st.ecnReductions).toBeLessThanOrEqual(marked);
    // The marks were answered as congestion without any loss recovery.
    expect(st.fastRetransmits).toBe(0);
    expect(st.retransmits).toBeLessThan(st.ecnReductions);
    expect(st.ssthresh).toBeLessThan(0x7fffffff);
    expect(f.filter((x) => x.dir === 'out' && x.flags & CWR && !(x.flags & SYN)).length).toBe(st.ecnCwrSent);
    console.log(
      `tcp-tun ECN us -> kernel: ${marked} CE marks, ${st.ecnEceReceived} ECE ACKs, ${st.ecnReductions} reductions, ${st.ecnCwrSent} CWR, ${st.retransmits} retransmits, ssthresh ${st.ssthresh}`,
    );
  });
});

const OOB_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.settimeout(10)
print('ready', flush=True)
s.sendall(b'hello')
s.send(b'!', socket.MSG_OOB)
s.sendall(b'world')
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print('done', flush=True)
`;

const OOB_SERVER = `
import socket, sys, time
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(1)
l.settimeout(10)
print('ready', flush=True)
c, _ = l.accept()
c.settimeout(10)
# Linux forgets the urgent byte once a normal read passes it: take it first, once
# everything (a few bytes, one RTT on a TUN link) has had time to arrive.
time.sleep(0.5)
try:
    oob = c.recv(1, socket.MSG_OOB).hex()
except OSError as e:
    oob = 'error-' + str(e.errno)
inline = b''
while True:
    d = c.recv(65536)
    if not d:
        break
    inline += d
print('inline', inline.hex(), 'oob', oob, flush=True)
c.close()
`;

describe('urgent data with the kernel (RFC 9293 §3.8.5)', () => {
  it("the kernel's send(MSG_OOB) reaches us inline with an 'urgent' event just past the byte", async () => {
    const PORT = 7002;
    const marks: number[] = [];
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve) => {
      const srv = s.tcp.createServer((sock) => {
        sock.on('urgent', (mark: number) => marks.push(mark));
        sock.on('data', (d: Buffer) => chunks.push(d));
        sock.on('end', () => {
          sock.end();
          srv.close();
          resolve();
        });
      });
      srv.listen(PORT);
    });
    const p = await python(ns, OOB_CLIENT, [s.ours.v4, String(PORT)]);
    procs.push(p);
    const exit = await exitWithin(p, 20_000);
    await ended;
    expect(exit.code, p.err).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe('hello!world');
    // The urgent byte '!' is stream byte 5; the mark is just past it.
    expect(marks).toEqual([6]);
    const urg = seen.filter((x) => x.dir === 'in' && x.dport === PORT && x.flags & URG);
    expect(urg.length).toBeGreaterThan(0);
  });

  it("our writeUrgent reaches the kernel's recv(MSG_OOB); the rest arrives inline around it", async () => {
    const PORT = 40092;
    const p = await python(ns, OOB_SERVER, [s.kernel.v4, String(PORT)]);
    procs.push(p);
    const sock = s.tcp.connect({ host: s.kernel.v4, port: PORT });
    sockets.push(sock);
    sock.resume();
    sock.on('connect', () => {
      sock.write('hello');
      sock.writeUrgent('!');
      sock.end('world');
    });
    const exit = await exitWithin(p, 20_000);
    expect(exit.code, p.err).toBe(0);
    // Without SO_OOBINLINE the kernel takes the urgent byte out of the stream.
    expect(p.out).toContain(
      `inline ${Buffer.from('helloworld').toString('hex')} oob ${Buffer.from('!').toString('hex')}`,
    );
    const urg = seen.filter((x) => x.dir === 'out' && x.dport === PORT && x.flags & URG && x.len > 0);
    expect(urg.length).toBeGreaterThan(0);
    expect(seen.some((x) => x.dir === 'out' && x.dport === PORT && x.flags & FIN)).toBe(true);
  });
});
