/**
 * Namespaces for the TUN tests that need device flags Netns.create does not pass through
 * (multi-queue, offloads): the namespace is made here, the TunLinks are opened into it
 * with setns, and the kernel side is configured with ip(8). Addresses are 198.18.0.0/24;
 * everything is removed by close(), which afterAll also calls.
 */
import { execFile, execFileSync } from 'node:child_process';
import { netnsDown } from '../src/netns.ts';
import { TunLink, type TunLinkOptions } from '../src/tun.ts';

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the TUN tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run them as root, as CI does',
    );
  }
}

const ip = (args: string[]) =>
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });

export interface TestNs {
  readonly name: string;
  readonly device: string;
  /** Open one more TunLink (a queue, with multiQueue) on the device. */
  open(options?: Omit<TunLinkOptions, 'name' | 'netns'>): TunLink;
  /** Open a second device, give the kernel `cidr` on it and bring it up. */
  openDevice(device: string, cidr: string, options?: Omit<TunLinkOptions, 'name' | 'netns'>): TunLink;
  /** Run ip(8) with these arguments inside the namespace (ip -n). */
  ip(args: string[]): void;
  /**
   * Run a program inside the namespace, bounded by timeoutMs; resolves with its stdout,
   * rejects if it fails. Asynchronous, so that our read loops run meanwhile.
   */
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * A namespace with device `device` (first opened with `first`), the kernel at 198.18.0.1/24
 * and (with an IPv6 prefix) fd00:5757::1/64, device up.
 */
export function makeNs(
  name: string,
  device: string,
  first: Omit<TunLinkOptions, 'name' | 'netns'>,
): {
  ns: TestNs;
  link: TunLink;
} {
  netnsDown(name);
  ip(['netns', 'add', name]);
  const links: TunLink[] = [];
  const ns: TestNs = {
    name,
    device,
    open(options = {}) {
      const l = TunLink.open({ ...options, name: device, netns: name });
      links.push(l);
      return l;
    },
    openDevice(dev, cidr, options = {}) {
      const l = TunLink.open({ ...options, name: dev, netns: name });
      links.push(l);
      ip(['-n', name, 'addr', 'add', cidr, 'dev', dev]);
      ip(['-n', name, 'link', 'set', dev, 'up']);
      return l;
    },
    ip(args) {
      ip(['-n', name, ...args]);
    },
    exec(cmd, args, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        execFile(
          'ip',
          ['netns', 'exec', name, cmd, ...args],
          { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`${cmd} in ${name}: ${err.message} ${stderr}`));
            else resolve(stdout);
          },
        );
      });
    },
    async close() {
      for (const l of links) l.close();
      await Promise.all(links.map((l) => l.closed));
      netnsDown(name);
    },
  };
  try {
    const link = ns.open(first);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'addr', 'add', '198.18.0.1/24', 'dev', device]);
    ip(['-n', name, '-6', 'addr', 'add', 'fd00:5757::1/64', 'dev', device, 'nodad']);
    ip(['-n', name, 'link', 'set', device, 'up']);
    return { ns, link };
  } catch (e) {
    for (const l of links) l.close();
    netnsDown(name);
    throw e;
  }
}

/**
 * An IPv4 UDP datagram turned back to its sender: addresses and ports swapped. Neither the
 * IPv4 header checksum nor the UDP checksum changes, since both are sums of 16-bit words
 * in which the swap only changes the order.
 */
export function udpEchoV4(p: Uint8Array): Uint8Array | undefined {
  if (p.length < 28 || p[0]! >> 4 !== 4 || p[9] !== 17) return undefined;
  const ihl = (p[0]! & 0xf) * 4;
  const q = p.slice();
  q.set(p.subarray(16, 20), 12);
  q.set(p.subarray(12, 16), 16);
  q.set(p.subarray(ihl + 2, ihl + 4), ihl);
  q.set(p.subarray(ihl, ihl + 2), ihl + 2);
  return q;
}

/** UDP to 198.18.0.2:9 for at most 5 s or 500k datagrams; stops quietly once the device is gone. */
export const FLOOD = `
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 5
n = 0
try:
    while n < 500000 and time.monotonic() < end:
        s.sendto(b'x' * 200, ('198.18.0.2', 9))
        n += 1
except OSError:
    pass
print(n)
`;
