/**
 * UDP against the Linux kernel and node:dgram, the independent peer: our Host runs on a
 * TUN device whose other side is a network namespace made and removed here
 * (sw-udp-test-<pid>, addresses 198.18.0.0/24 and fd00:5757::/64, MTU 1280). Programs in the
 * namespace are small node:dgram scripts. The kernel verifies our checksums (a bad one is
 * dropped silently and the test times out) and we verify its.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); fails, never skips, without it.
 */
import { Host } from '@stepwire/ip';
import { Netns } from '@stepwire/link';
import { RealClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { udpEcho } from '../src/echo.ts';
import type { UdpSystemError } from '../src/errors.ts';
import { Udp, type UdpSocket } from '../src/socket.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-udp-test-${process.pid}`;
let ns: Netns;
let host: Host;
let udp: Udp;

beforeAll(() => {
  if (process.getuid?.() !== 0)
    throw new Error('the kernel UDP tests need root: run them as root, as CI does');
  ns = Netns.create({ name: NS, device: 'swudp0', mtu: 1280 });
  host = new Host({ name: 'stepwire', clock: new RealClock() });
  host.addInterface({ link: ns.link, ipv4: `${ns.ours.v4}/24`, ipv6: `${ns.ours.v6}/64` });
  udp = new Udp(host);
  udpEcho(udp, 7);
});

afterAll(async () => {
  host?.close();
  await ns?.close();
});

/** A node:dgram client in the namespace: connect, send `size` random bytes, report what comes back. */
const CLIENT = `
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const [type, host, port, size] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const s = dgram.createSocket(type);
const data = crypto.randomBytes(size);
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => done({ timeout: true }), 5000);
s.on('message', (m, r) => done({ same: m.equals(data), size: r.size, from: r.address, port: r.port }));
s.on('error', (e) => done({ error: e.code }));
s.connect(port, host, () => s.send(data));
`;

/** A node:dgram echo server in the namespace; prints its port when listening. */
const SERVER = `
const dgram = require('node:dgram');
const [type, host] = [process.argv[1], process.argv[2]];
const s = dgram.createSocket(type);
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(0, host, () => console.log(s.address().port));
setTimeout(() => process.exit(0), 10000);
`;

async function kernelClient(type: string, dst: string, port: number, size: number) {
  const r = await ns.run(process.execPath, ['-e', CLIENT, type, dst, String(port), String(size)], {
    timeoutMs: 10_000,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function next<T>(s: UdpSocket, event: 'message' | 'error', ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    s.once(event, (...args: unknown[]) => {
      clearTimeout(t);
      resolve((event === 'message' ? args : args[0]) as T);
    });
  });
}

describe('UDP against the Linux kernel over TUN', () => {
  for (const [type, v] of [
    ['udp4', 'v4'],
    ['udp6', 'v6'],
  ] as const) {
    it(`node:dgram in the kernel's namespace gets our echo, small and fragmented (${type})`, async () => {
      const ours = ns.ours[v];
      expect(await kernelClient(type, ours, 7, 5)).toEqual({ same: true, size: 5, from: ours, port: 7 });
      // 3000 bytes over MTU 1280: the kernel fragments, we reassemble, fragment the echo, it reassembles.
      expect(await kernelClient(type, ours, 7, 3000)).toEqual({
        same: true,
        size: 3000,
        from: ours,
        port: 7,
      });
    });

    it(`a connected node:dgram socket gets ECONNREFUSED from our port unreachable (${type})`, async () => {
      const before = host.counters.get('udp.drop.no-port');
      expect(await kernelClient(type, ns.ours[v], 9, 10)).toEqual({ error: 'ECONNREFUSED' });
      expect(host.counters.get('udp.drop.no-port')).toBe(before + 1);
    });

    it(`our socket talks to a node:dgram echo server in the kernel (${type})`, async () => {
      const server = ns.spawn(process.execPath, ['-e', SERVER, type, ns.kernel[v]]);
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not start')), 5000);
        server.stdout?.once('data', (d: Buffer) => {
          clearTimeout(t);
          resolve(Number(d.toString().trim()));
        });
      });
      const s = udp.createSocket(type);
      s.bindSync(0);
      const data = Buffer.alloc(2500, 0x5a);
      const reply = next<[Buffer, { address: string; port: number; size: number }]>(s, 'message');
      s.send(data, port, ns.kernel[v]);
      const [msg, rinfo] = await reply;
      expect(Buffer.compare(msg, data)).toBe(0);
      expect(rinfo).toMatchObject({ address: ns.kernel[v], port, size: 2500 });
      server.kill();
      s.close();
    });

    it(`the kernel's port unreachable reaches our sending socket as ECONNREFUSED (${type})`, async () => {
      const s = udp.createSocket(type);
      const err = next<UdpSystemError>(s, 'error');
      // Port 9 (discard) has no listener in the namespace.
      s.send('anyone?', 9, ns.kernel[v]);
      expect(await err).toMatchObject({ code: 'ECONNREFUSED', address: ns.kernel[v], port: 9 });
      s.close();
    });
  }
});
