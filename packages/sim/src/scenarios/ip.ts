/** The IP scenarios: path MTU discovery and fragmentation. */
import { PingError } from '@stepwire/ip';
import type { Scenario } from './scenario.ts';

export const pingPmtu: Scenario = {
  name: 'ping-pmtu',
  title: 'Ping, and path MTU discovery through a router to a 1280-byte link (RFC 1191, RFC 8201)',
  watch: [
    "B's link has MTU 1280: a 1400-byte IPv4 ping without DF is fragmented by the router on the way.",
    "With DF set the router answers 'unreachable code=4 mtu=1280' instead, and A records the path MTU.",
    'IPv6 routers never fragment: Packet Too Big, and A fragments its retry itself (Fragment header).',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B', { mtu: 1280 });
    const ping = async (dst: string, size: number, df: boolean) => {
      try {
        const r = await net.run(a.ip.ping(dst, { size, dontFragment: df, timeoutMs: 1000 }));
        result('A', true, `${r.bytes} bytes from ${r.from}: rtt=${r.rtt.toFixed(1)} ms`);
      } catch (e) {
        if (!(e instanceof PingError)) throw e;
        result('A', e.reason === 'icmp-error', `ping ${dst} -s ${size}${df ? ' (DF)' : ''}: ${e.message}`);
      }
    };
    step('small pings over IPv4 and IPv6');
    await ping(b.ipv4, 56, false);
    await ping(b.ipv6, 56, false);
    step('IPv4, 1400 bytes without DF: the router fragments it for the 1280-byte link');
    await ping(b.ipv4, 1400, false);
    step('IPv4, 1400 bytes with DF: the router may not fragment, and says so');
    await ping(b.ipv4, 1400, true);
    step('IPv6, 1400 bytes: Packet Too Big, then A fragments at the source');
    await ping(b.ipv6, 1400, false);
    await ping(b.ipv6, 1400, false);
  },
};

export const fragmentation: Scenario = {
  name: 'fragmentation',
  title:
    'Fragmentation and reassembly: a 4000-byte UDP datagram over a 1500-byte MTU (RFC 791 §2.3, RFC 8200 §4.5)',
  watch: [
    'IPv4: three fragments with the same id, off=0/1480/2960, MF on all but the last.',
    'IPv6: a Fragment header on each piece (off=0/1448/2896, M on all but the last).',
    'B reassembles each datagram and echoes it, fragmented again, back to A.',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const payload = Buffer.from(Array.from({ length: 4000 }, (_, i) => i & 0xff));
    for (const family of ['udp4', 'udp6'] as const) {
      step(family === 'udp4' ? 'over IPv4' : 'over IPv6');
      const echo = b.udp.createSocket(family);
      echo.on('message', (m, r) => echo.send(m, r.port, r.address));
      echo.bind(7);
      const s = a.udp.createSocket(family);
      const back = new Promise<Buffer>((resolve) => s.once('message', resolve));
      s.send(payload, 7, family === 'udp4' ? b.ipv4 : b.ipv6);
      const got = await net.run(back);
      result('A', got.equals(payload), `${got.length} bytes came back intact`);
      s.close();
      echo.close();
    }
  },
};
