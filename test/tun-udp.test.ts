/**
 * UDP between our stack and the Linux kernel over TUN: fragmented datagrams the kernel
 * must reassemble, echo both ways (socat against our echo service, our socket against a
 * kernel-side echo), and ICMP port unreachable turned into ECONNREFUSED on each side.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tun-udp-<pid>', removed in afterAll.
 */

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import { type UdpEchoService, type UdpSocket, udpEcho } from '@stepwire/udp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSnmp, requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-tun-udp-${process.pid}`;
let s: TunSession;
let ns: Netns;
let echo: UdpEchoService;
const sockets: UdpSocket[] = [];

/** Receives `count` datagrams on (address, port) and prints each as hex, one per line. */
const SINK = `
import socket, sys
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((addr, port))
s.settimeout(10)
print('ready', flush=True)
for _ in range(count):
    data, peer = s.recvfrom(65535)
    print(peer[1], data.hex(), flush=True)
`;

/** Echoes every datagram on (198.18.0.1, port) and (fd00:5757::1, port) until killed (or 60 s). */
const ECHO = `
import select, socket, sys, time
port = int(sys.argv[1])
socks = []
for fam, addr in ((socket.AF_INET, '198.18.0.1'), (socket.AF_INET6, 'fd00:5757::1')):
    x = socket.socket(fam, socket.SOCK_DGRAM)
    x.bind((addr, port))
    socks.append(x)
print('ready', flush=True)
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select(socks, [], [], 1)
    for x in r:
        data, peer = x.recvfrom(65535)
        x.sendto(data, peer)
`;

/** A connected UDP socket to our side's closed port: prints the exception the second recv gets. */
const REFUSED = `
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((addr, port))
s.settimeout(3)
s.send(b'anyone there?')
try:
    s.recv(100)
    print('no error')
except ConnectionRefusedError:
    print('ConnectionRefusedError')
except socket.timeout:
    print('timeout')
`;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'socat', '/usr/bin/python3']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50 });
  ns = s.namespace!;
  echo = udpEcho(s.udp, 7);
});

afterAll(async () => {
  for (const x of sockets) x.close();
  echo?.close();
  await s?.close();
  expect(netnsExists(NS)).toBe(false);
});

function socket(type: 'udp4' | 'udp6'): UdpSocket {
  const x = s.udp.createSocket(type);
  x.bindSync(0);
  sockets.push(x);
  return x;
}

function python(script: string, args: string[]): ChildProcess {
  return ns.spawn('/usr/bin/python3', ['-c', script, ...args]);
}

function collect(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.once('close', () => resolve(out));
  });
}

/** Send `payload` from `sock` to (dst, port) and resolve with the first datagram back, or undefined after ms. */
function exchange(sock: UdpSocket, payload: Uint8Array, dst: string, port: number, ms = 3000) {
  return new Promise<Buffer | undefined>((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', on);
      resolve(undefined);
    }, ms);
    const on = (m: Buffer) => {
      clearTimeout(timer);
      sock.off('message', on);
      resolve(Buffer.from(m));
    };
    sock.on('message', on);
    sock.send(payload, port, dst);
  });
}

describe('fragmented datagrams from us, reassembled by the kernel', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: 5000, 20000 and the largest datagram arrive intact at a kernel socket`, async () => {
      const sizes = [5000, 20_000, family === 4 ? 65_507 : 65_527];
      const dst = family === 4 ? s.kernel.v4 : s.kernel.v6;
      const sink = python(SINK, [dst, '9000', String(sizes.length)]);
      const out = collect(sink);
      await waitForLine(sink, /^ready$/, 10_000);
      const okBefore =
        family === 4 ? await kernelSnmp(ns, 'Ip', 'ReasmOKs') : await kernelSnmp(ns, '', 'Ip6ReasmOKs');
      const sock = socket(family === 4 ? 'udp4' : 'udp6');
      const payloads = sizes.map((n) => randomBytes(n));
      // One at a time, so that the order of arrival is the order of sending.
      for (const p of payloads) {
        sock.send(p, 9000, dst);
        await new Promise((r) => setTimeout(r, 20));
      }
      const lines = (await out)
        .trim()
        .split('\n')
        .filter((l) => l !== 'ready');
      expect(lines).toHaveLength(sizes.length);
      lines.forEach((line, i) => {
        const [port, hex] = line.split(' ');
        expect(Number(port)).toBe(sock.address().port);
        expect(hex).toBe(payloads[i]!.toString('hex'));
      });
      const okAfter =
        family === 4 ? await kernelSnmp(ns, 'Ip', 'ReasmOKs') : await kernelSnmp(ns, '', 'Ip6ReasmOKs');
      expect(okAfter - okBefore).toBe(sizes.length);
    });
  }
});

describe('UDP echo, kernel to us: socat against our echo service (RFC 862)', () => {
  for (const family of [4, 6] as const) {
    for (const size of [1, 1000, 4000]) {
      it(`IPv${family}, ${size} bytes: socat gets back what it sent`, async () => {
        const target = family === 4 ? `UDP4:${s.ours.v4}:7` : `UDP6:[${s.ours.v6}]:7`;
        // Text without newlines, so one stdin read is one datagram and the echo compares as text.
        const text = randomBytes(size).toString('base64').slice(0, size);
        const echoedBefore = echo.echoed;
        const r = await ns.run('socat', ['-t', '1', '-b', '65536', '-', target], {
          input: text,
          timeoutMs: 10_000,
        });
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe(text);
        expect(echo.echoed - echoedBefore).toBe(1);
      });
    }
  }
});

describe('UDP echo, us to the kernel: our socket against a kernel-side echo', () => {
  for (const tool of ['socat', 'python'] as const) {
    for (const family of [4, 6] as const) {
      it(`${tool}, IPv${family}: payloads of 0 to 8000 bytes come back unchanged`, async () => {
        const port = tool === 'socat' ? 7007 : 7008;
        const dst = family === 4 ? s.kernel.v4 : s.kernel.v6;
        const child =
          tool === 'socat'
            ? // No fork: socat serves the one peer (our socket) itself, so killing its PID
              // ends it, and its cat sees end of input; a forked child would outlive the kill.
              ns.spawn('socat', [
                '-T',
                '10',
                '-b',
                '65536',
                `UDP${family}-LISTEN:${port},bind=${family === 4 ? dst : `[${dst}]`}`,
                'EXEC:cat',
              ])
            : python(ECHO, [String(port)]);
        if (tool === 'python') await waitForLine(child, /^ready$/, 10_000);
        else await new Promise((r) => setTimeout(r, 300));
        try {
          const sock = socket(family === 4 ? 'udp4' : 'udp6');
          for (const size of tool === 'socat' ? [1, 100, 1400, 3000] : [0, 1, 100, 1472, 3000, 8000]) {
            const p = randomBytes(size);
            const back = await exchange(sock, p, dst, port);
            expect(back?.toString('hex'), `${size} bytes`).toBe(p.toString('hex'));
          }
        } finally {
          child.kill('SIGKILL');
        }
      });
    }
  }
});

describe('ICMP port unreachable', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: the kernel's reaches our sending socket as ECONNREFUSED`, async () => {
      const sock = socket(family === 4 ? 'udp4' : 'udp6');
      const dst = family === 4 ? s.kernel.v4 : s.kernel.v6;
      const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 3000);
        sock.once('error', (e) => {
          clearTimeout(timer);
          resolve(e as NodeJS.ErrnoException);
        });
        sock.send(Buffer.from('hello?'), 9, dst);
      });
      expect(err?.code).toBe('ECONNREFUSED');
      expect(err).toMatchObject({ address: dst, port: 9 });
      // The socket keeps working after the error.
      const p = randomBytes(32);
      const echoChild = python(ECHO, ['7010']);
      try {
        await waitForLine(echoChild, /^ready$/, 10_000);
        expect((await exchange(sock, p, dst, 7010))?.toString('hex')).toBe(p.toString('hex'));
      } finally {
        echoChild.kill('SIGKILL');
      }
    });

    it(`IPv${family}: ours reaches a connected kernel socket as ConnectionRefusedError`, async () => {
      const dst = family === 4 ? s.ours.v4 : s.ours.v6;
      const before = s.host.counters.get(`icmpv${family}.tx.error`);
      const r = await ns.run('/usr/bin/python3', ['-c', REFUSED, dst, '9999'], { timeoutMs: 10_000 });
      expect(r.stdout.trim(), r.stderr).toBe('ConnectionRefusedError');
      expect(s.host.counters.get(`icmpv${family}.tx.error`) - before).toBe(1);
    });
  }
});
