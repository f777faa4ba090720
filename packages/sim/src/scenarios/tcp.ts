/** The TCP scenarios: handshakes, loss recovery, flow control, SYN cookies, Fast Open. */
import { once } from 'node:events';
import { encodeSegment, SYN, type TcpSocket } from '@stepwire/tcp';
import { about } from './about.ts';
import type { Scenario } from './scenario.ts';
import { readAll, tcpEcho } from './support.ts';

export const tcpHandshake: Scenario = {
  ...about('tcp-handshake'),
  link: { delay: 5 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tcpEcho(b, 7);
    const c = a.tcp.connect({ host: b.ipv4, port: 7 });
    c.end('hello, B');
    const back = await net.run(readAll(c));
    result('A', back.toString() === 'hello, B', `echoed '${back}'`);
    server.close();
  },
};

export const tcpSimultaneousOpen: Scenario = {
  ...about('tcp-simultaneous-open'),
  link: { delay: 5 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    // No listener anywhere: two active opens whose ports name each other.
    const ca = a.tcp.connect({ host: b.ipv4, port: 5000, localPort: 5000 });
    const cb = b.tcp.connect({ host: a.ipv4, port: 5000, localPort: 5000 });
    const both = Promise.all([once(ca, 'connect'), once(cb, 'connect')]);
    await net.run(both);
    const got = Promise.all([readAll(ca), readAll(cb)]);
    ca.end('from A');
    cb.end('from B');
    const [atA, atB] = await net.run(got);
    result('A', atA.toString() === 'from B', `read '${atA}'`);
    result('B', atB.toString() === 'from A', `read '${atB}'`);
  },
};

export const tcpSackLoss: Scenario = {
  ...about('tcp-sack-loss'),
  link: { delay: 10, loss: 0.05 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const received = new Promise<number>((resolve) => {
      const server = b.tcp.createServer((s) => {
        let n = 0;
        s.on('data', (d: Buffer) => (n += d.length));
        s.on('end', () => {
          s.end();
          server.close();
          resolve(n);
        });
      });
      server.listen(9);
    });
    const c = a.tcp.connect({ host: b.ipv4, port: 9 });
    c.on('error', () => {});
    c.end(Buffer.alloc(65536, 0x5a));
    c.resume();
    const n = await net.run(received);
    result('B', n === 65536, `${n} of 65536 bytes arrived`);
  },
};

export const tcpZeroWindow: Scenario = {
  ...about('tcp-zero-window'),
  link: { delay: 5 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    let reader: TcpSocket | undefined;
    const total = 32 * 1024;
    const done = new Promise<number>((resolve) => {
      const server = b.tcp.createServer({ connection: { receiveBuffer: 8192 } }, (s) => {
        reader = s;
        s.pause(); // not reading: the window closes
        let n = 0;
        s.on('data', (d: Buffer) => (n += d.length));
        s.on('end', () => {
          s.end();
          server.close();
          resolve(n);
        });
      });
      server.listen(9);
    });
    const c = a.tcp.connect({ host: b.ipv4, port: 9 });
    c.end(Buffer.alloc(total, 1));
    c.resume();
    // Let the window close and a few probes go out, then start reading.
    await net.run(3_000);
    reader?.resume();
    const n = await net.run(done);
    result('B', n === total, `read ${n} of ${total} bytes after the window reopened`);
  },
};

export const synFloodCookies: Scenario = {
  ...about('syn-flood-cookies'),
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const m = net.host('M');
    // The flooder answers nothing: its SYN,ACKs die here, as behind a flooder's firewall.
    m.ip.registerProtocol(6, { receive() {} });
    const server = b.tcp.createServer((s) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
    });
    server.listen({ port: 80, backlog: 4 });
    step('M floods B with SYNs');
    for (let i = 0; i < 6; i++) {
      const seg = encodeSegment(
        {
          srcPort: 40000 + i,
          dstPort: 80,
          seq: 1000 * i,
          ack: 0,
          flags: SYN,
          window: 65535,
          urgentPointer: 0,
          options: { mss: 1460 },
          payload: new Uint8Array(0),
        },
        { src: m.ipv4, dst: b.ipv4 },
      );
      m.ip.send({ dst: b.ipv4, protocol: 6, payload: seg });
    }
    await net.run(50);
    step('A connects while the SYN queue is full');
    const c = a.tcp.connect({ host: b.ipv4, port: 80 });
    c.end('still here?');
    const back = await net.run(readAll(c));
    result('A', back.toString() === 'still here?', `connected through a SYN cookie, echoed '${back}'`);
    server.close();
  },
};

export const tcpFastOpen: Scenario = {
  ...about('tcp-fastopen'),
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = b.tcp.createServer({ fastOpen: true }, (s) => {
      s.on('data', (d: Buffer) => s.end(`got ${d}`));
      s.on('error', () => {});
    });
    server.listen(80);
    for (const round of [1, 2]) {
      step(round === 1 ? 'first connection: ask for a cookie' : 'second connection: data in the SYN');
      const start = net.clock.now();
      const c = a.tcp.connect({ host: b.ipv4, port: 80, fastOpen: true });
      c.end(`request ${round}`);
      const back = await net.run(readAll(c));
      result(
        'A',
        back.toString() === `got request ${round}`,
        `'${back}' after ${net.clock.now() - start} ms`,
      );
      await net.run(100);
    }
    server.close();
  },
};
