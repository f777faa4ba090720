/** The TCP scenarios: handshakes, loss recovery, flow control, SYN cookies, Fast Open. */
import { once } from 'node:events';
import { encodeSegment, SYN, type TcpSocket } from '@stepwire/tcp';
import type { Scenario } from './scenario.ts';
import { readAll, tcpEcho } from './support.ts';

export const tcpHandshake: Scenario = {
  name: 'tcp-handshake',
  title: 'TCP three-way handshake, a little data, and the close (RFC 9293 §3.5, §3.6)',
  watch: [
    "A's SYN offers its options (mss, ws, sack, ts); B's SYN,ACK answers with its own; A's ACK completes it.",
    'Each side goes CLOSED → SYN-SENT/SYN-RECEIVED → ESTABLISHED as its segment arrives.',
    'A closes first: FIN each way, and A, the active closer, waits in TIME-WAIT for 2×MSL (60 s).',
  ],
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
  name: 'tcp-simultaneous-open',
  title: 'Simultaneous open: both ends send SYN at once, and both close at once (RFC 9293 §3.5, §3.6)',
  watch: [
    'A and B each connect from port 5000 to the other: two SYNs cross on the wire, each side goes SYN-SENT → SYN-RECEIVED.',
    'Each answers the SYN it got with a SYN,ACK; each SYN,ACK moves its receiver to ESTABLISHED (Figure 8 of RFC 9293).',
    'Both close at once: the FINs cross, each side goes FIN-WAIT-1 → CLOSING → TIME-WAIT (Figure 13).',
  ],
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
  name: 'tcp-sack-loss',
  title: 'Loss recovery with SACK: 64 KiB over a wire that loses 5% of packets (RFC 2018, RFC 6675)',
  watch: [
    "After a loss B's ACKs carry sack=left-right blocks: what arrived beyond the hole.",
    'A retransmits only the missing segment (the same seq again), not everything after it.',
    'The dropped packets show as "link dropped" notes; the transfer still completes intact.',
  ],
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
  name: 'tcp-zero-window',
  title: 'Flow control: a receiver that stops reading closes its window (RFC 9293 §3.8.6)',
  watch: [
    "B's application does not read and B's 8 KiB receive buffer fills: its ACKs say win=0.",
    'A stops sending and probes the closed window with its persist timer, backing off.',
    'When B reads again it announces the open window, and A sends the rest.',
  ],
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
  name: 'syn-flood-cookies',
  title: 'A SYN flood fills the SYN queue; SYN cookies keep the server reachable (RFC 4987 §3.6)',
  watch: [
    "M sends SYNs it never completes (it drops B's SYN,ACKs): B's SYN queue of 4 fills.",
    "With the queue full, B answers A's SYN with a cookie in its ISN and keeps no state.",
    "A's ACK returns the cookie; B validates it and the connection is ESTABLISHED anyway.",
  ],
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
  name: 'tcp-fastopen',
  title: 'TCP Fast Open: a cookie on the first connection, data in the SYN on the second (RFC 7413)',
  watch: [
    "First connection: A's SYN asks for a cookie (tfo=req); B's SYN,ACK brings one (tfo=8B).",
    "Second connection: A's SYN carries the cookie and the request itself (len=9 in the SYN).",
    "B's SYN,ACK acknowledges the data with the SYN (ack = seq + 1 + 9): no segment of its own carries the request.",
  ],
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
