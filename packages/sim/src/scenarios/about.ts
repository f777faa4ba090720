/**
 * What each scenario is about: its title and what to watch in its ladder, keyed by its name,
 * in the order `stepwire demo --list` shows them. The one place these texts live: each
 * scenario object spreads `...about(name)`, and the CLI's help reads this module through
 * `@stepwire/sim/about` without loading the scenarios themselves (they import the whole
 * stack, about a CPU-second of module loading for a command that only prints text). So this
 * module imports nothing.
 */

/** A scenario's name, its one-line title, and two or three lines of what to watch. */
export interface ScenarioAbout {
  readonly name: string;
  readonly title: string;
  readonly watch: readonly string[];
}

const TEXTS = {
  'tcp-handshake': {
    title: 'TCP three-way handshake, a little data, and the close (RFC 9293 §3.5, §3.6)',
    watch: [
      "A's SYN offers its options (mss, ws, sack, ts); B's SYN,ACK answers with its own; A's ACK completes it.",
      'Each side goes CLOSED → SYN-SENT/SYN-RECEIVED → ESTABLISHED as its segment arrives.',
      'A closes first: FIN each way, and A, the active closer, waits in TIME-WAIT for 2×MSL (60 s).',
    ],
  },
  'tcp-simultaneous-open': {
    title: 'Simultaneous open: both ends send SYN at once, and both close at once (RFC 9293 §3.5, §3.6)',
    watch: [
      'A and B each connect from port 5000 to the other: two SYNs cross on the wire, each side goes SYN-SENT → SYN-RECEIVED.',
      'Each answers the SYN it got with a SYN,ACK; each SYN,ACK moves its receiver to ESTABLISHED (Figure 8 of RFC 9293).',
      'Both close at once: the FINs cross, each side goes FIN-WAIT-1 → CLOSING → TIME-WAIT (Figure 13).',
    ],
  },
  'tcp-sack-loss': {
    title: 'Loss recovery with SACK: 64 KiB over a wire that loses 5% of packets (RFC 2018, RFC 6675)',
    watch: [
      "After a loss B's ACKs carry sack=left-right blocks: what arrived beyond the hole.",
      'A retransmits only the missing segment (the same seq again), not everything after it.',
      'The dropped packets show as "link dropped" notes; the transfer still completes intact.',
    ],
  },
  'tcp-zero-window': {
    title: 'Flow control: a receiver that stops reading closes its window (RFC 9293 §3.8.6)',
    watch: [
      "B's application does not read and B's 8 KiB receive buffer fills: its ACKs say win=0.",
      'A stops sending and probes the closed window with its persist timer, backing off.',
      'When B reads again it announces the open window, and A sends the rest.',
    ],
  },
  'syn-flood-cookies': {
    title: 'A SYN flood fills the SYN queue; SYN cookies keep the server reachable (RFC 4987 §3.6)',
    watch: [
      "M sends SYNs it never completes (it drops B's SYN,ACKs): B's SYN queue of 4 fills.",
      "With the queue full, B answers A's SYN with a cookie in its ISN and keeps no state.",
      "A's ACK returns the cookie; B validates it and the connection is ESTABLISHED anyway.",
    ],
  },
  'tcp-fastopen': {
    title: 'TCP Fast Open: a cookie on the first connection, data in the SYN on the second (RFC 7413)',
    watch: [
      "First connection: A's SYN asks for a cookie (tfo=req); B's SYN,ACK brings one (tfo=8B).",
      "Second connection: A's SYN carries the cookie and the request itself (len=9 in the SYN).",
      "B's SYN,ACK acknowledges the data with the SYN (ack = seq + 1 + 9): no segment of its own carries the request.",
    ],
  },
  'tls-full': {
    title: 'A full TLS 1.3 handshake over TCP, then application data (RFC 8446 §2)',
    watch: [
      'ClientHello (suites, key share, SNI) → ServerHello: from here on everything is encrypted.',
      "EncryptedExtensions, Certificate, CertificateVerify, Finished from B; A's state machine walks WAIT_SH → … → CONNECTED.",
      'One round trip after the TCP handshake, A sends its data with its Finished.',
    ],
  },
  'tls-hrr': {
    title:
      'HelloRetryRequest: the client guessed a key-share group the server does not take (RFC 8446 §4.1.4)',
    watch: [
      'A sends a key share for X25519 only; B accepts P-256 only and answers HelloRetryRequest.',
      'A sends a second ClientHello with a P-256 share; the handshake continues from there.',
      'It costs one extra round trip: compare the time of CONNECTED with tls-full.',
    ],
  },
  'tls-resumption': {
    title: 'Session resumption with a ticket: PSK with (EC)DHE (RFC 8446 §2.2)',
    watch: [
      'After the first handshake B sends NewSessionTicket; A keeps it.',
      'The second ClientHello offers the ticket as a pre_shared_key; B accepts it.',
      'No Certificate and no CertificateVerify the second time: the PSK proves who B is.',
    ],
  },
  'tls-0rtt': {
    title: '0-RTT early data with a resumed session (RFC 8446 §2.3, §4.2.10)',
    watch: [
      "The second ClientHello offers the ticket (psk); A's request follows in the same first flight, under the early traffic key.",
      'B takes the PSK (ServerHello … psk) and the data; A closes the early data with EndOfEarlyData before its Finished.',
      'Early data can be replayed by an attacker: only idempotent requests belong there.',
    ],
  },
  'tls-mtls': {
    title: 'Mutual TLS: the server asks for a client certificate (RFC 8446 §4.3.2, §4.4.2)',
    watch: [
      'B sends CertificateRequest along with its own Certificate.',
      'A answers with its Certificate and CertificateVerify before its Finished.',
      "B checks A's certificate against its CA; only then does the connection count as authorized.",
    ],
  },
  'tls-keyupdate': {
    title: 'KeyUpdate: fresh traffic keys in the middle of a connection (RFC 8446 §4.6.3)',
    watch: [
      'After the handshake A sends KeyUpdate(update_requested) and switches its sending keys.',
      'B answers with its own KeyUpdate(update_not_requested) and switches too.',
      'The data that follows is protected by the next generation of keys; nothing else changes.',
    ],
  },
  'ping-pmtu': {
    title: 'Ping, and path MTU discovery through a router to a 1280-byte link (RFC 1191, RFC 8201)',
    watch: [
      "B's link has MTU 1280: a 1400-byte IPv4 ping without DF is fragmented by the router on the way.",
      "With DF set the router answers 'unreachable code=4 mtu=1280' instead, and A records the path MTU.",
      'IPv6 routers never fragment: Packet Too Big, and A fragments its retry itself (Fragment header).',
    ],
  },
  fragmentation: {
    title:
      'Fragmentation and reassembly: a 4000-byte UDP datagram over a 1500-byte MTU (RFC 791 §2.3, RFC 8200 §4.5)',
    watch: [
      'IPv4: three fragments with the same id, off=0/1480/2960, MF on all but the last.',
      'IPv6: a Fragment header on each piece (off=0/1448/2896, M on all but the last).',
      'B reassembles each datagram and echoes it, fragmented again, back to A.',
    ],
  },
  'http-keepalive': {
    title: 'HTTP/1.1 persistent connection: two requests, one TCP connection (RFC 9112 §9.3)',
    watch: [
      "One TCP handshake: A's pool opens a connection for the first request and keeps it when the response ends.",
      "The second request goes out on the same connection ('reuse connection #N'): no second SYN.",
      'Two request/response pairs, then A closes the idle connection after 2 s (its idle timeout).',
    ],
  },
  'http-pipelining': {
    title: 'HTTP/1.1 pipelining: three requests sent at once, answered strictly in order (RFC 9112 §9.3.2)',
    watch: [
      'A writes three GETs back to back on one connection, before any response: one segment carries all three.',
      'B answers /slow after 300 ms and takes /b and /c only once it is out: they wait behind it (head-of-line blocking).',
      'The responses come back in request order: slow, b, c.',
    ],
  },
  'http-long-polling': {
    title:
      'Long polling: the server holds the request until there is news, or until its timeout (RFC 6202 §2)',
    watch: [
      "A's GET /poll reaches B at once; B holds it: no response, only TCP's ACK, while nothing happens.",
      'B publishes at t=1.5 s and the response leaves in that same instant.',
      'The next poll finds nothing: B answers 204 when its 3 s hold ends, and A polls again.',
    ],
  },
  'http-sse': {
    title:
      'Server-Sent Events: events pushed on one response, a cut, a resume with Last-Event-ID (WHATWG HTML §9.2; a chunked response, RFC 9112 §7.1)',
    watch: [
      "One GET, one 200 text/event-stream response: events 1, 2, 3 go out on it, each id'd, 500 ms apart.",
      "B's connection is cut (RST) after event 3; A waits its retry time (1 s) and connects again.",
      'The new request carries Last-Event-ID: 3, and B resumes at event 4: nothing lost, nothing twice.',
    ],
  },
  websocket: {
    title: 'WebSocket: the Upgrade, masked frames, ping/pong and the closing handshake (RFC 6455)',
    watch: [
      "A's GET asks to Upgrade: websocket; B answers 101 Switching Protocols and the connection speaks frames.",
      "Every frame from A is masked (a fresh key each); B's frames are not (RFC 6455 §5.1).",
      'A pings, B pongs; then Close 1000 from A, Close back from B, and B closes TCP first (§7.1.1).',
    ],
  },
  'http2-multiplexing': {
    title:
      'HTTP/2 multiplexing: three requests in flight on one connection, answered as each is ready (RFC 9113 §5)',
    watch: [
      'One TCP connection: the preface and SETTINGS each way, then HEADERS on streams 1, 3 and 5 at once.',
      'B answers /b and /c (streams 3, 5) first, their DATA frames interleaved; the slow /a (stream 1) ends last.',
      'Unlike http-pipelining, a slow response holds no other back (a lost TCP segment still would); each stream walks idle → open → half-closed → closed on its own.',
    ],
  },
  quic: {
    title:
      'QUIC v1 and HTTP/3: a handshake, a GET, then a resumed connection whose request rides in 0-RTT (RFC 9000, 9001, 9114)',
    watch: [
      "A's Initial packets carry the ClientHello in CRYPTO frames, each datagram padded to 1200 bytes (RFC 9000 §14.1); B answers with Initial and Handshake packets coalesced in one datagram.",
      'Once the handshake is done B sends HANDSHAKE_DONE in a 1-RTT packet; the GET and its response travel as HTTP/3 HEADERS/DATA in STREAM frames.',
      'The second connection resumes with the ticket: its GET leaves in 0-RTT packets right behind the Initial, before any answer from B.',
    ],
  },
} satisfies Record<string, Omit<ScenarioAbout, 'name'>>;

/** A name that has texts here; a scenario whose name is misspelt fails to type-check. */
export type ScenarioName = keyof typeof TEXTS;

/** The title and what to watch of the scenario `name`, with the name, to spread into it. */
export function about(name: ScenarioName): ScenarioAbout {
  const { title, watch } = TEXTS[name];
  return { name, title, watch };
}

/** Every scenario's texts, in the order of SCENARIOS (the CLI's help lists them so). */
export const SCENARIO_ABOUT: readonly ScenarioAbout[] = (Object.keys(TEXTS) as ScenarioName[]).map(about);
