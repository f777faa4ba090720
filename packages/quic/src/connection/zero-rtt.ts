/**
 * 0-RTT (RFC 9001 §4.6, RFC 9000 §7.4.1): a resuming client sends application data in 0-RTT
 * packets, under the transport parameters it remembered, until 1-RTT keys arrive; the
 * server reads them only with the keys TLS gave when it accepted early data. A rejection
 * sends everything 0-RTT carried again in 1-RTT.
 */
import type { PacketType } from '../packet/header.ts';
import type { TransportParameters } from '../transport-parameters.ts';
import { onLost } from './acks.ts';
import type { ConnectionCore } from './core.ts';

/** Client: right after the ClientHello: 0-RTT keys mean early data, under the remembered limits (RFC 9000 §7.4.1). */
export function startEarlyData(c: ConnectionCore, remembered: TransportParameters | undefined): void {
  if (c.early.tx && remembered) {
    c.streamSet.applyPeerParams(remembered);
    c.early.params = remembered;
  } else c.early.tx = undefined;
}

/** Client: 1-RTT data goes in 0-RTT packets while there are 0-RTT keys and no 1-RTT ones (RFC 9001 §4.6.1). */
export function sendsZeroRtt(c: ConnectionCore): boolean {
  return !c.keys.oneRtt && c.early.tx !== undefined;
}

/** Whether a packet of this type may be read, as far as 0-RTT is concerned; drops it when not. */
export function zeroRttAcceptable(c: ConnectionCore, type: PacketType, now: number): boolean {
  // 0-RTT packets are only read with the keys TLS gave when it accepted early data (RFC 9001 §4.6.1).
  if (type === '0-RTT' && (c.role === 'client' || !c.early.rx)) {
    c.drop(now, 'quic.rx.0rtt', '0-RTT packet without 0-RTT keys');
    return false;
  }
  // RFC 9001 §4.9.3: the server may drop 0-RTT keys once 1-RTT packets arrive.
  if (type === '1-RTT' && c.role === 'server') c.early.rx = undefined;
  return true;
}

/** At handshake completion: what the server said of our early data, and the end of 0-RTT keys. */
export function endEarlyData(c: ConnectionCore, earlyData: 'accepted' | 'rejected' | undefined): void {
  if (c.role === 'client' && c.early.sent.size > 0 && earlyData !== 'accepted') {
    // RFC 9001 §4.6.2: 0-RTT rejected: everything it carried goes again in 1-RTT.
    for (const p of c.recovery.unacked('ApplicationData'))
      if (c.early.sent.has(p.packetNumber)) onLost(c, p.frames);
    c.counters.inc('quic.0rtt.rejected');
  }
  // RFC 9001 §4.9.3: the client stops using 0-RTT keys once it has 1-RTT keys.
  c.early.tx = undefined;
  c.early.sent.clear();
  c.early.params = undefined;
}

/**
 * RFC 9221 §3: a client that sent DATAGRAM frames under a remembered max_datagram_frame_size
 * "MUST validate that the new value ... sent by the server in the handshake is greater than
 * or equal to the stored value; if not, the client MUST terminate the connection with error
 * PROTOCOL_VIOLATION" — when the server accepted the early data (RFC 9000 §7.4.1: a server
 * that accepts 0-RTT does not reduce limits). Returns the problem, if any.
 */
export function checkRememberedLimits(
  c: ConnectionCore,
  params: TransportParameters,
  earlyData: 'accepted' | 'rejected' | undefined,
): string | undefined {
  const remembered = c.early.params?.max_datagram_frame_size ?? 0;
  if (c.role !== 'client' || earlyData !== 'accepted' || remembered === 0) return undefined;
  const now = params.max_datagram_frame_size ?? 0;
  if (now >= remembered) return undefined;
  return `max_datagram_frame_size ${now} below the ${remembered} remembered for 0-RTT (RFC 9221 §3)`;
}
