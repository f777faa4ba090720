import type { Udp, UdpSocket, UdpSocketType } from './socket.ts';

/** Echo (7, RFC 862), daytime (13, RFC 867), chargen (19, RFC 864), time (37, RFC 868): services that answer anything. */
const LOOP_PORTS = new Set([7, 13, 19, 37]);

export interface UdpEchoService {
  readonly port: number;
  readonly sockets: readonly UdpSocket[];
  /** Datagrams echoed so far. */
  readonly echoed: number;
  close(): void;
}

/**
 * The Echo service over UDP (RFC 862 §"UDP Based Echo Service"): every datagram received
 * on the port is sent back to its source with the same data. One socket per family, each
 * on the wildcard address. Binding happens at once and throws (EADDRINUSE, ...) on failure.
 *
 * The reply goes out from inside the 'message' handler and reuses the received bytes, so
 * the echo path makes no copy beyond the one encoding the reply.
 */
export function udpEcho(
  udp: Udp,
  port = 7,
  families: readonly UdpSocketType[] = ['udp4', 'udp6'],
): UdpEchoService {
  const sockets: UdpSocket[] = [];
  let echoed = 0;
  try {
    for (const type of families) {
      const s = udp.createSocket(type);
      sockets.push(s);
      s.on('message', (msg, rinfo) => {
        // RFC 768: source port 0 means the sender expects no reply; there is nowhere to send one.
        if (rinfo.port === 0) {
          udp.stack.counters.inc('udp.echo.no-reply');
          return;
        }
        // A datagram "from" another echo-like service (often spoofed) would start an endless
        // ping-pong between the two servers; like inetd, do not answer those ports.
        if (rinfo.port === port || LOOP_PORTS.has(rinfo.port)) {
          udp.stack.counters.inc('udp.echo.loop-guard');
          return;
        }
        echoed++;
        s.send(msg, rinfo.port, rinfo.address);
      });
      // An echo server has nobody to tell about a failed reply or an ICMP error caused by
      // one (the client went away): count them and keep serving.
      s.on('error', () => udp.stack.counters.inc('udp.echo.error'));
      s.bindSync(port);
    }
  } catch (e) {
    for (const s of sockets) s.close();
    throw e;
  }
  return {
    port,
    sockets,
    get echoed() {
      return echoed;
    },
    close() {
      for (const s of sockets) s.close();
    },
  };
}
