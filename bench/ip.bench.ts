import dgram from 'node:dgram';
import { decodeIpv4, encodeIpv4, IPPROTO_UDP, type Ipv4Packet } from '@stepwire/ip';
import { ipv4Packet } from '@stepwire/ip/testing';
import { Sim } from '@stepwire/sim';
import { decodeUdp, encodeUdp, udpEcho } from '@stepwire/udp';
import { type Benchmark, rate, result } from './lib.ts';

const SRC = '198.18.0.1';
const DST = '198.18.0.2';

function packet(payload: Uint8Array): Ipv4Packet {
  return ipv4Packet({
    protocol: IPPROTO_UDP,
    src: SRC,
    dst: DST,
    payload,
  });
}

/** Echo `total` datagrams with `window` in flight; returns echoed datagrams per second. */
async function echoRate(
  send: (b: Uint8Array) => void,
  onReply: (cb: () => void) => void,
  pump: (done: () => boolean) => Promise<void>,
  total: number,
  window: number,
): Promise<number> {
  const msg = new Uint8Array(64);
  let sent = 0;
  let got = 0;
  onReply(() => {
    got++;
    if (sent < total) {
      sent++;
      send(msg);
    }
  });
  const start = performance.now();
  for (; sent < Math.min(window, total); ) {
    sent++;
    send(msg);
  }
  await pump(() => got >= total);
  return total / ((performance.now() - start) / 1000);
}

async function oursEcho(total: number, window: number): Promise<number> {
  const sim = new Sim({ seed: 1, mtu: 1500 });
  const echo = udpEcho(sim.b.udp, 7, ['udp4']);
  const s = sim.a.udp.createSocket('udp4');
  s.bindSync(0);
  const r = await echoRate(
    (b) => s.send(b, 7, DST),
    (cb) => s.on('message', cb),
    async (done) => sim.clock.runUntil(done, 3_600_000),
    total,
    window,
  );
  s.close();
  echo.close();
  sim.close();
  return r;
}

async function kernelEcho(total: number, window: number): Promise<number> {
  const server = dgram.createSocket('udp4');
  server.on('message', (m, r) => server.send(m, r.port, r.address));
  await new Promise<void>((res) => server.bind(0, '127.0.0.1', res));
  const client = dgram.createSocket('udp4');
  await new Promise<void>((res) => client.bind(0, '127.0.0.1', res));
  const port = server.address().port;
  // Loopback UDP can drop under a burst; a watchdog refills the window so the run ends.
  let got = 0;
  const r = await echoRate(
    (b) => client.send(b, port, '127.0.0.1'),
    (cb) =>
      client.on('message', () => {
        got++;
        cb();
      }),
    (done) =>
      new Promise<void>((res) => {
        let last = -1;
        const t = setInterval(() => {
          if (done()) {
            clearInterval(t);
            res();
          } else if (got === last) {
            client.send(new Uint8Array(64), port, '127.0.0.1');
          }
          last = got;
        }, 50);
      }),
    total,
    window,
  );
  client.close();
  server.close();
  return r;
}

export const ipBenchmarks: Benchmark[] = [
  {
    name: 'ipv4+udp codec',
    async run() {
      const payload = new Uint8Array(64);
      const pseudo = { src: SRC, dst: DST };
      const wire = encodeIpv4(packet(encodeUdp({ srcPort: 1234, dstPort: 7, payload }, pseudo)));
      let sink = 0;
      const enc = rate(() => {
        const udp = encodeUdp({ srcPort: 1234, dstPort: 7, payload }, pseudo);
        sink ^= encodeIpv4(packet(udp)).length;
      });
      const dec = rate(() => {
        const ip = decodeIpv4(wire);
        sink ^= decodeUdp(ip.payload, ip).srcPort;
      });
      if (sink === -1) console.log(sink);
      return [
        result('IPv4+UDP encode (64 B payload)', enc, 'packets/s'),
        result('IPv4+UDP decode (64 B payload)', dec, 'packets/s'),
      ];
    },
  },
  {
    name: 'udp echo',
    async run() {
      const total = 50_000;
      const window = 32;
      const ours = await oursEcho(total, window);
      const kernel = await kernelEcho(total, window);
      return [
        result('UDP echo, 64 B, 32 in flight', ours, 'packets/s', 'node:dgram over kernel loopback', kernel),
      ];
    },
  },
];
