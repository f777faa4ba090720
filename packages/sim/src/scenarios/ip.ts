/** The IP scenarios: path MTU discovery and fragmentation. */
import { PingError } from '@stepwire/ip';
import { about } from './about.ts';
import type { Scenario } from './scenario.ts';

export const pingPmtu: Scenario = {
  ...about('ping-pmtu'),
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
  ...about('fragmentation'),
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
