/**
 * Scenarios: one protocol feature each, on a fresh simulated network, deterministic by
 * seed. `stepwire demo <name>` prints each one's ladder; a library user can run them too
 * (runScenario) and read `net.lines`. Every scenario says in two or three lines what to
 * watch, and its test checks that the ladder shows exactly that.
 */
import type { Duplex } from 'node:stream';
import { PingError } from '@stepwire/ip';
import { encodeSegment, SYN, type TcpSocket } from '@stepwire/tcp';
import type { SecureSocket, SessionTicket } from '@stepwire/tls';
import { type LadderLine, ladderHeader } from './ladder.ts';
import { createNetwork, type LinkOptions, type NetHost, type Network } from './network.ts';

export interface ScenarioContext {
  net: Network;
  /** A line of outcome under the ladder: '✓ text' or '✗ text', attributed to a host. */
  result(host: string, ok: boolean, text: string): void;
  /** A heading between the parts of a scenario. */
  step(title: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** What to look for in the ladder, two or three lines. */
  watch: string[];
  /** The wire for this scenario (impairments, MTU); the user's --loss/--mtu do not apply. */
  link?: LinkOptions;
  run(ctx: ScenarioContext): Promise<void>;
}

export interface ScenarioRun {
  net: Network;
  /** Every result line, and whether all of them were ✓. */
  results: string[];
  ok: boolean;
}

/** Run a scenario on a new network; ladder lines go to `print` as they happen (or are only kept). */
export async function runScenario(
  s: Scenario,
  o: {
    seed?: number;
    print?: (line: string) => void;
    pcap?: string;
    keylog?: (line: string) => void;
    /** Changes to the scenario's wire (the CLI's --loss and --mtu). */
    link?: LinkOptions;
    /** Each ladder line as data (with its packet's bytes) instead of printed: `demo --step`. */
    onLine?: (line: LadderLine) => void;
  } = {},
): Promise<ScenarioRun> {
  const print = o.print ?? (() => {});
  if (o.onLine) print(ladderHeader());
  const net = createNetwork({
    seed: o.seed ?? 1,
    trace: o.onLine ? true : print,
    ...(o.onLine ? { onLine: o.onLine } : {}),
    link: { ...s.link, ...o.link },
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.keylog ? { keylog: o.keylog } : {}),
  });
  const results: string[] = [];
  let ok = true;
  const ctx: ScenarioContext = {
    net,
    result(host, good, text) {
      const line = `${' '.repeat(8)}${host.padEnd(6)}  ${good ? '✓' : '✗'} ${text}`;
      results.push(line);
      ok &&= good;
      print(line);
    },
    step(title) {
      print(`\n— ${title}`);
    },
  };
  try {
    await s.run(ctx);
    await net.run(); // let every close, TIME-WAIT and retransmission play out
  } finally {
    net.close();
  }
  return { net, results, ok };
}

// ---------------------------------------------------------------------------------------
// Helpers

/** Resolves with everything a stream delivers until it ends. */
function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

/** An echo server on B's TCP port: every byte back, then close when the client does. */
function tcpEcho(b: NetHost, port: number) {
  const server = b.tcp.createServer((s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  server.listen(port);
  return server;
}

/** A TLS echo server on B, the first line back prefixed with what the server saw. */
function tlsEcho(b: NetHost, options: Parameters<NetHost['tls']['createServer']>[0] = {}) {
  return b.tls.createServer({ port: 443, ...options }, (s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
}

/** A's TLS client: send `text` once secure, read until the server closes. */
async function tlsExchange(
  net: Network,
  a: NetHost,
  b: NetHost,
  text: string,
  options: Partial<Parameters<NetHost['tls']['connect']>[0]> = {},
  during?: (s: SecureSocket) => void,
): Promise<{ reply: string; socket: SecureSocket; ticket?: SessionTicket }> {
  const socket = a.tls.connect({ host: b.ipv4, port: 443, servername: 'b.test', ...options });
  let ticket: SessionTicket | undefined;
  socket.on('session', (t: SessionTicket) => {
    ticket = t;
  });
  const reply = new Promise<string>((resolve, reject) => {
    let got = '';
    socket.on('secureConnect', () => {
      during?.(socket);
      socket.end(text);
    });
    socket.on('data', (d: Buffer) => (got += d));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
  const r = await net.run(reply);
  return { reply: r, socket, ...(ticket ? { ticket } : {}) };
}

// ---------------------------------------------------------------------------------------
// The scenarios

const tcpHandshake: Scenario = {
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

const tcpSackLoss: Scenario = {
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

const tcpZeroWindow: Scenario = {
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

const synFloodCookies: Scenario = {
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

const tcpFastOpen: Scenario = {
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

const tlsFull: Scenario = {
  name: 'tls-full',
  title: 'A full TLS 1.3 handshake over TCP, then application data (RFC 8446 §2)',
  watch: [
    'ClientHello (suites, key share, SNI) → ServerHello: from here on everything is encrypted.',
    "EncryptedExtensions, Certificate, CertificateVerify, Finished from B; A's state machine walks WAIT_SH → … → CONNECTED.",
    'One round trip after the TCP handshake, A sends its data with its Finished.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    const { reply, socket } = await tlsExchange(net, a, b, 'hello over TLS');
    result(
      'A',
      reply === 'hello over TLS' && socket.authorized,
      `authorized=${socket.authorized}, echoed '${reply}'`,
    );
    server.close();
  },
};

const tlsHrr: Scenario = {
  name: 'tls-hrr',
  title: 'HelloRetryRequest: the client guessed a key-share group the server does not take (RFC 8446 §4.1.4)',
  watch: [
    'A sends a key share for X25519 only; B accepts P-256 only and answers HelloRetryRequest.',
    'A sends a second ClientHello with a P-256 share; the handshake continues from there.',
    'It costs one extra round trip: compare the time of CONNECTED with tls-full.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b, { groups: 'P-256' });
    const { reply, socket } = await tlsExchange(net, a, b, 'after a retry', { groups: 'X25519:P-256' });
    result(
      'A',
      reply === 'after a retry',
      `handshake done with group ${socket.handshake?.group ?? '?'}, echoed '${reply}'`,
    );
    server.close();
  },
};

const tlsResumption: Scenario = {
  name: 'tls-resumption',
  title: 'Session resumption with a ticket: PSK with (EC)DHE (RFC 8446 §2.2)',
  watch: [
    'After the first handshake B sends NewSessionTicket; A keeps it.',
    'The second ClientHello offers the ticket as a pre_shared_key; B accepts it.',
    'No Certificate and no CertificateVerify the second time: the PSK proves who B is.',
  ],
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    step('first connection: full handshake, a ticket arrives');
    const first = await tlsExchange(net, a, b, 'first');
    result('A', first.ticket !== undefined, `ticket received (${first.ticket ? 'kept' : 'none'})`);
    step('second connection: resume with the ticket');
    const second = await tlsExchange(net, a, b, 'second', first.ticket ? { session: first.ticket } : {});
    const resumed = second.socket.isSessionReused();
    result('A', resumed && second.reply === 'second', `resumed=${resumed}, echoed '${second.reply}'`);
    server.close();
  },
};

const tls0rtt: Scenario = {
  name: 'tls-0rtt',
  title: '0-RTT early data with a resumed session (RFC 8446 §2.3, §4.2.10)',
  watch: [
    "The second ClientHello offers the ticket (psk); A's request follows in the same first flight, under the early traffic key.",
    'B takes the PSK (ServerHello … psk) and the data; A closes the early data with EndOfEarlyData before its Finished.',
    'Early data can be replayed by an attacker: only idempotent requests belong there.',
  ],
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b, { earlyData: true });
    step('first connection: a ticket that allows early data');
    const first = await tlsExchange(net, a, b, 'first');
    step('second connection: the request rides in the first flight');
    const second = await tlsExchange(
      net,
      a,
      b,
      '',
      first.ticket ? { session: first.ticket, earlyData: 'GET / (early)' } : {},
    );
    const accepted = second.socket.earlyDataAccepted === true;
    result(
      'A',
      accepted && second.reply === 'GET / (early)',
      `early data accepted=${accepted}, echoed '${second.reply}'`,
    );
    server.close();
  },
};

const tlsMtls: Scenario = {
  name: 'tls-mtls',
  title: 'Mutual TLS: the server asks for a client certificate (RFC 8446 §4.3.2, §4.4.2)',
  watch: [
    'B sends CertificateRequest along with its own Certificate.',
    'A answers with its Certificate and CertificateVerify before its Finished.',
    "B checks A's certificate against its CA; only then does the connection count as authorized.",
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const ca = net.certificateAuthority().certificatePem;
    let peer = '';
    const server = b.tls.createServer({ port: 443, requestCert: true, ca }, (s) => {
      peer = s.getPeerCertificate()?.subject.CN ?? '';
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
    });
    const mine = net.issueCertificate(['a.test']);
    const { reply } = await tlsExchange(net, a, b, 'it is me', {
      cert: mine.certificatePem,
      key: mine.privateKeyPem,
    });
    result('B', peer === 'a.test', `client certificate CN=${peer || '(none)'}`);
    result('A', reply === 'it is me', `echoed '${reply}'`);
    server.close();
  },
};

const tlsKeyUpdate: Scenario = {
  name: 'tls-keyupdate',
  title: 'KeyUpdate: fresh traffic keys in the middle of a connection (RFC 8446 §4.6.3)',
  watch: [
    'After the handshake A sends KeyUpdate(update_requested) and switches its sending keys.',
    'B answers with its own KeyUpdate(update_not_requested) and switches too.',
    'The data that follows is protected by the next generation of keys; nothing else changes.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    let updates = 0;
    const { reply } = await tlsExchange(net, a, b, 'after the update', {}, (s) => {
      s.on('keyUpdate', () => updates++);
      s.updateKeys(true);
    });
    result(
      'A',
      reply === 'after the update',
      `echoed '${reply}' under new keys (${updates} key change event(s))`,
    );
    server.close();
  },
};

const pingPmtu: Scenario = {
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

const fragmentation: Scenario = {
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

export const SCENARIOS: readonly Scenario[] = [
  tcpHandshake,
  tcpSackLoss,
  tcpZeroWindow,
  synFloodCookies,
  tcpFastOpen,
  tlsFull,
  tlsHrr,
  tlsResumption,
  tls0rtt,
  tlsMtls,
  tlsKeyUpdate,
  pingPmtu,
  fragmentation,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
