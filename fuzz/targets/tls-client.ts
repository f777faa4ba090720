/**
 * The TLS 1.3 client machine fed arbitrary server flights after its ClientHello: chunks with
 * a 2-byte length each, delivered in order. receive() must never throw; failures are error
 * events naming a real alert. (The client's key share is fresh each run, so the fuzzer
 * reaches ServerHello, HelloRetryRequest, alerts and the record layer; AEAD stops it at the
 * encrypted handshake, as it does any attacker.)
 */
import { TlsClient } from '../../packages/tls/src/client.ts';
import { chunks } from './expect.ts';
import { fixedCrypto, NOW, SERVER_NAME, verifier } from './tls-peers.ts';
import { checkOutcome } from './tls-server.ts';

export function fuzz(data: Uint8Array): void {
  const c = new TlsClient({ crypto: fixedCrypto(1), serverName: SERVER_NAME, verifier });
  c.start(NOW);
  for (const ch of chunks(data)) checkOutcome(c.receive(ch, NOW));
}
export const maxLen = 8192;
