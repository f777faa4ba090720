/**
 * The TLS 1.3 server machine fed arbitrary client flights: the input is a list of chunks
 * (2-byte length each), delivered in order as the transport would. receive() must never
 * throw; an alert we send must be a real RFC 8446 alert and be in the output bytes.
 */
import { alertName } from '../../packages/tls/src/codec/alert.ts';
import type { TlsOutput } from '../../packages/tls/src/connection.ts';
import { TlsServer } from '../../packages/tls/src/server.ts';
import { chunks } from './expect.ts';
import { fixedCrypto, NOW, signer } from './tls-peers.ts';

const ticketKey = new Uint8Array(32).fill(7);

export function checkOutcome(out: TlsOutput): void {
  for (const e of out.events) {
    if (e.type !== 'error' || !e.sent) continue;
    // An alert we send names a real RFC 8446 alert and is in the output. (A received alert
    // carries whatever the peer sent: unknown ones are errors too, RFC 8446 §6.)
    if (/^alert\(/.test(alertName(e.alert)))
      throw new Error(`we sent an alert RFC 8446 does not define: ${e.alert}`);
    if (out.data.length === 0) throw new Error('an alert reported sent is not in the output');
  }
}

export function fuzz(data: Uint8Array): void {
  const s = new TlsServer({ crypto: fixedCrypto(2), signer, ticketKey });
  for (const c of chunks(data)) checkOutcome(s.receive(c, NOW));
}
export const maxLen = 8192;
