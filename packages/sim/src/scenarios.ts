/**
 * Scenarios: one protocol feature each, on a fresh simulated network, deterministic by
 * seed. `stepwire demo <name>` prints each one's ladder; a library user can run them too
 * (runScenario) and read `net.lines`. Every scenario says in two or three lines what to
 * watch, and its test checks that the ladder shows exactly that.
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  Agent,
  createHttpServer,
  EventSource,
  fetch,
  type HttpServer,
  h2,
  type IncomingMessage,
  lastEventIdOf,
  type RequestListener,
  type ServerResponse,
  SseWriter,
  ws,
} from '@stepwire/http';
import { PingError } from '@stepwire/ip';
import { encodeSegment, SYN, type TcpSocket } from '@stepwire/tcp';
import type { SecureSocket, SessionTicket } from '@stepwire/tls';
import { Prng, TraceBus, type TraceEvent } from '@stepwire/wire';
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
    pcapng?: string;
    keylog?: (line: string) => void;
    /** Changes to the scenario's wire (the CLI's --loss and --mtu). */
    link?: LinkOptions;
    /** Each ladder line as data (with its packet's bytes) instead of printed: `demo --step`. */
    onLine?: (line: LadderLine) => void;
    /** Every trace event of the run, with its fields (`demo --html`'s TCP timelines). */
    onTrace?: (e: TraceEvent) => void;
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
    ...(o.pcapng ? { pcapng: o.pcapng } : {}),
    ...(o.keylog ? { keylog: o.keylog } : {}),
  });
  if (o.onTrace) net.trace.on(o.onTrace);
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

/**
 * A trace bus for our HTTP and WebSocket code that puts what they write on the ladder as
 * notes, the way TLS handshake messages show: each request, response and frame where it
 * is written ('http → GET /a HTTP/1.1 on #1'), pool decisions ('http pool …: reuse
 * connection #1'), what the server does ('http process GET /a'). Per-byte reads and the
 * core's state changes stay out: they would bury the packets.
 */
function appTrace(net: Network): TraceBus {
  const bus = new TraceBus();
  bus.on((e) => {
    if (e.state && e.layer === 'http') return;
    if (e.dir === 'in') return;
    if (e.state && e.layer === 'h2') {
      // The ladder would print only 'from → to'; HTTP/2's summary names the stream too.
      const { state: _state, ...rest } = e;
      net.trace.emit({ ...rest, dir: 'local' });
      return;
    }
    net.trace.emit(e.dir === 'out' ? { ...e, dir: 'local', summary: `→ ${e.summary}` } : e);
  });
  return bus;
}

/** A note of the scenario's own on the ladder (what the application did, not the stack). */
function note(net: Network, host: string, layer: string, text: string): void {
  net.trace.emit({ t: net.clock.now(), host, layer, dir: 'local', summary: text });
}

/** Our HTTP/1.1 server on `port` of B's TCP. */
function httpServer(
  net: Network,
  b: NetHost,
  port: number,
  listener: RequestListener,
  options: { keepAliveTimeout?: number } = {},
): { server: HttpServer; close(): void } {
  const server = createHttpServer(
    {
      clock: net.clock,
      trace: appTrace(net),
      hostName: b.name,
      timeouts: { keepAliveTimeout: options.keepAliveTimeout ?? 5_000 },
    },
    listener,
  );
  const listener4 = b.tcp.createServer();
  server.listen(listener4);
  listener4.listen(port);
  return {
    server,
    close() {
      server.close();
      listener4.close();
    },
  };
}

/** Our HTTP client on A: a pool per origin over A's TCP. */
function httpAgent(net: Network, a: NetHost, idleTimeout = 4_000): Agent {
  return new Agent({
    clock: net.clock,
    trace: appTrace(net),
    traceHost: a.name,
    idleTimeout,
    connect: (o) => a.tcp.connect({ host: o.hostname, port: o.port }),
  });
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

const tcpSimultaneousOpen: Scenario = {
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

const httpKeepAlive: Scenario = {
  name: 'http-keepalive',
  title: 'HTTP/1.1 persistent connection: two requests, one TCP connection (RFC 9112 §9.3)',
  watch: [
    "One TCP handshake: A's pool opens a connection for the first request and keeps it when the response ends.",
    "The second request goes out on the same connection ('reuse connection #N'): no second SYN.",
    'Two request/response pairs, then A closes the idle connection after 2 s (its idle timeout).',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (req, res) => res.end(`hello from ${req.url}`));
    const agent = httpAgent(net, a, 2_000);
    for (const path of ['/first', '/second']) {
      step(`GET ${path}`);
      const res = await net.run(fetch(`http://${b.ipv4}${path}`, { agent }));
      const body = await net.run(res.text());
      result('A', res.status === 200 && body === `hello from ${path}`, `${res.status} '${body}'`);
    }
    step('idle: the pool closes the connection');
    await net.run(3_000);
    const pool = agent.stats().origins[`http://${b.ipv4}:80`];
    result(
      'A',
      pool?.created === 1 && pool.reused === 1,
      `connections opened ${pool?.created}, reused ${pool?.reused}`,
    );
    http.close();
  },
};

const httpPipelining: Scenario = {
  name: 'http-pipelining',
  title: 'HTTP/1.1 pipelining: three requests sent at once, answered strictly in order (RFC 9112 §9.3.2)',
  watch: [
    'A writes three GETs back to back on one connection, before any response: one segment carries all three.',
    'B answers /slow after 300 ms and takes /b and /c only once it is out: they wait behind it (head-of-line blocking).',
    'The responses come back in request order: slow, b, c.',
  ],
  link: { delay: 5 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (req, res) => {
      if (req.url === '/slow') {
        note(net, 'B', 'app', 'GET /slow: working for 300 ms');
        net.clock.setTimer(net.clock.now() + 300, () => res.end('slow'));
      } else res.end(req.url?.slice(1));
    });
    const c = a.tcp.connect({ host: b.ipv4, port: 80 });
    const get = (path: string, close = false) =>
      `GET ${path} HTTP/1.1\r\nHost: ${b.ipv4}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    c.on('connect', () => {
      note(net, 'A', 'http', '→ GET /slow, GET /b, GET /c (pipelined, one write)');
      c.write(get('/slow') + get('/b') + get('/c', true));
    });
    const all = (await net.run(readAll(c))).toString();
    const bodies = all
      .split('HTTP/1.1 ')
      .slice(1)
      .map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    result('A', bodies.join(',') === 'slow,b,c', `responses in order: ${bodies.join(', ')}`);
    http.close();
  },
};

const httpLongPolling: Scenario = {
  name: 'http-long-polling',
  title: 'Long polling: the server holds the request until there is news, or until its timeout (RFC 6202 §2)',
  watch: [
    "A's GET /poll reaches B at once; B holds it: no response, only TCP's ACK, while nothing happens.",
    'B publishes at t=1.5 s and the response leaves in that same instant.',
    'The next poll finds nothing: B answers 204 when its 3 s hold ends, and A polls again.',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const waiting: ServerResponse[] = [];
    const http = httpServer(net, b, 80, (_req: IncomingMessage, res) => {
      waiting.push(res);
      const hold = net.clock.setTimer(net.clock.now() + 3_000, () => {
        const at = waiting.indexOf(res);
        if (at >= 0) waiting.splice(at, 1);
        res.writeHead(204).end();
      });
      // Answered by a publish (or gone): the hold ends with it.
      res.on('finish', () => hold.cancel());
      res.on('close', () => hold.cancel());
    });
    const publish = (text: string) => {
      note(net, 'B', 'app', `publish '${text}' to ${waiting.length} waiting poll(s)`);
      for (const res of waiting.splice(0)) res.end(text);
    };
    const agent = httpAgent(net, a);
    const poll = async () => {
      const res = await net.run(fetch(`http://${b.ipv4}/poll`, { agent }));
      return { status: res.status, body: await net.run(res.text()), at: net.clock.now() };
    };
    step('poll 1: held until B publishes at t=1.5 s');
    const start = net.clock.now();
    net.clock.setTimer(start + 1_500, () => publish('news'));
    const first = await poll();
    result(
      'A',
      first.status === 200 && first.body === 'news',
      `${first.status} '${first.body}' after ${first.at - start} ms`,
    );
    step('poll 2: nothing to say, 204 after the 3 s hold');
    const again = net.clock.now();
    const second = await poll();
    result('A', second.status === 204, `${second.status} after ${second.at - again} ms`);
    agent.destroy();
    http.close();
  },
};

const httpSse: Scenario = {
  name: 'http-sse',
  title:
    'Server-Sent Events: events pushed on one response, a cut, a resume with Last-Event-ID (WHATWG HTML §9.2; a chunked response, RFC 9112 §7.1)',
  watch: [
    "One GET, one 200 text/event-stream response: events 1, 2, 3 go out on it, each id'd, 500 ms apart.",
    "B's connection is cut (RST) after event 3; A waits its retry time (1 s) and connects again.",
    'The new request carries Last-Event-ID: 3, and B resumes at event 4: nothing lost, nothing twice.',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    let connections = 0;
    const http = httpServer(net, b, 80, (req, res) => {
      connections++;
      const from = Number(lastEventIdOf(req) || '0');
      note(
        net,
        'B',
        'app',
        `stream ${connections}, Last-Event-ID '${lastEventIdOf(req)}': from event ${from + 1}`,
      );
      const sse = new SseWriter(res, { clock: net.clock, heartbeat: 0, retry: 1_000 });
      let n = from;
      const tick = () => {
        n++;
        note(net, 'B', 'sse', `→ id: ${n} event: tick data: event ${n}`);
        sse.send({ id: String(n), event: 'tick', data: `event ${n}` });
        if (connections === 1 && n === 3) {
          net.clock.setTimer(net.clock.now() + 100, () => {
            note(net, 'B', 'app', 'connection cut');
            (req.socket as { resetAndDestroy?: () => void }).resetAndDestroy?.();
          });
        } else if (n < 5) net.clock.setTimer(net.clock.now() + 500, tick);
      };
      net.clock.setTimer(net.clock.now() + 500, tick);
    });
    const agent = httpAgent(net, a);
    const es = new EventSource(`http://${b.ipv4}/events`, {
      clock: net.clock,
      fetch: (url, init) => fetch(url, { ...init, agent }),
    });
    const got: string[] = [];
    step('subscribe');
    await net.run(
      new Promise<void>((resolve) => {
        es.addEventListener('tick', (e) => {
          const m = e as MessageEvent;
          got.push(`${m.lastEventId}:${m.data}`);
          if (got.length === 5) resolve();
        });
        es.onerror = () => note(net, 'A', 'app', `stream lost; reconnect in ${es.reconnectionTime} ms`);
      }),
    );
    es.close();
    const ids = got.map((g) => g.split(':')[0]).join(',');
    result('A', ids === '1,2,3,4,5' && connections === 2, `events ${ids} over ${connections} connections`);
    agent.destroy();
    http.close();
  },
};

const websocket: Scenario = {
  name: 'websocket',
  title: 'WebSocket: the Upgrade, masked frames, ping/pong and the closing handshake (RFC 6455)',
  watch: [
    "A's GET asks to Upgrade: websocket; B answers 101 Switching Protocols and the connection speaks frames.",
    "Every frame from A is masked (a fresh key each); B's frames are not (RFC 6455 §5.1).",
    'A pings, B pongs; then Close 1000 from A, Close back from B, and B closes TCP first (§7.1.1).',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const http = httpServer(net, b, 80, (_req, res) => res.writeHead(426).end());
    const trace = appTrace(net);
    // Before the WebSocketServer's own listener, which writes the 101 at once.
    http.server.on('upgrade', () =>
      note(net, 'B', 'http', '→ 101 Switching Protocols, Sec-WebSocket-Accept from the key'),
    );
    const wss = new ws.WebSocketServer({ server: http.server, clock: net.clock, trace, traceHost: 'B' });
    wss.on('connection', (sock: ws.WebSocket) => {
      sock.on('message', (d: Buffer) => sock.send(`echo: ${d}`));
    });
    // Keys from the seed, so the same seed masks the same way.
    const prng = new Prng((net.seed ^ 0x6455) >>> 0);
    note(net, 'A', 'http', '→ GET /chat HTTP/1.1 Upgrade: websocket, Sec-WebSocket-Key');
    const client = ws.connectWebSocket({
      url: `ws://${b.ipv4}/chat`,
      clock: net.clock,
      trace,
      traceHost: 'A',
      connect: (host, port) => a.tcp.connect({ host, port }),
      maskingKey: () => prng.bytes(4),
      randomBytes: (n) => prng.bytes(n),
    });
    const events: string[] = [];
    step('opening handshake, a message, a ping');
    await net.run(
      new Promise<void>((resolve, reject) => {
        client.on('error', reject);
        client.on('open', () => {
          note(net, 'A', 'websocket', `open: ${client.response?.status} accepted`);
          client.send('hello');
        });
        client.on('message', (d: Buffer) => {
          events.push(d.toString());
          client.ping('are you there');
        });
        client.on('pong', (d: Buffer) => {
          events.push(`pong '${d}'`);
          resolve();
        });
      }),
    );
    step('closing handshake');
    const closed = await net.run(
      new Promise<string>((resolve) => {
        client.on('close', (code: number, reason: Buffer | string) => resolve(`${code} ${reason}`));
        client.close(1000, 'bye');
      }),
    );
    events.push(`close ${closed}`);
    result(
      'A',
      events.join(' | ') === "echo: hello | pong 'are you there' | close 1000 bye",
      events.join(' | '),
    );
    http.close();
  },
};

const http2Multiplexing: Scenario = {
  name: 'http2-multiplexing',
  title:
    'HTTP/2 multiplexing: three requests in flight on one connection, answered as each is ready (RFC 9113 §5)',
  watch: [
    'One TCP connection: the preface and SETTINGS each way, then HEADERS on streams 1, 3 and 5 at once.',
    'B answers /b and /c (streams 3, 5) first, their DATA frames interleaved; the slow /a (stream 1) ends last.',
    'Unlike http-pipelining, a slow response holds no other back (a lost TCP segment still would); each stream walks idle → open → half-closed → closed on its own.',
  ],
  link: { delay: 5 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const trace = appTrace(net);
    const server = h2.createHttp2Server({ clock: net.clock, trace, hostName: 'B' }, (stream, headers) => {
      const path = String(headers[':path']);
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      const later = (ms: number, f: () => void) => net.clock.setTimer(net.clock.now() + ms, f);
      if (path === '/a') {
        note(net, 'B', 'app', 'GET /a: working for 300 ms');
        later(300, () => stream.end('a, at last'));
      } else {
        // Two pieces 50 ms apart: the two streams' DATA frames take turns on the wire.
        later(50, () => stream.write(`${path.slice(1)} part 1; `));
        later(100, () => stream.end(`${path.slice(1)} part 2`));
      }
    });
    const listener = b.tcp.createServer((s) => server.handle(s));
    listener.listen(80);
    const session = h2.connectHttp2(`http://${b.ipv4}`, {
      clock: net.clock,
      trace,
      hostName: 'A',
      createConnection: () => a.tcp.connect({ host: b.ipv4, port: 80 }),
    });
    const finished: string[] = [];
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let body = '';
        stream.on('data', (d: Buffer) => (body += d));
        stream.on('end', () => {
          finished.push(path);
          resolve(body);
        });
        stream.on('error', reject);
      });
    step('three requests at once on one connection');
    const bodies = await net.run(Promise.all(['/a', '/b', '/c'].map(get)));
    result(
      'A',
      finished.join(',') === '/b,/c,/a' && bodies[0] === 'a, at last',
      `finished in the order ${finished.join(', ')} on one connection`,
    );
    step('B shuts down gracefully: GOAWAY');
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    server.close();
    listener.close();
    await net.run(closed);
  },
};

export const SCENARIOS: readonly Scenario[] = [
  tcpHandshake,
  tcpSimultaneousOpen,
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
  httpKeepAlive,
  httpPipelining,
  httpLongPolling,
  httpSse,
  websocket,
  http2Multiplexing,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
