/**
 * The TLS 1.3 client machine against a live server flight, tampered with as the input says.
 * Each run the client sends its ClientHello to our server (configured by the first input
 * byte: plain, HelloRetryRequest by group preference, a CertificateRequest, ALPN, tickets),
 * and the server's answer is cut into its records; the rest of the input is a list of
 * operations on them before they reach the client: deliver, split a record across reads,
 * flip a byte, drop one, repeat one, or inject a record of any type in the clear. Because
 * the flight is made live, the target follows whatever our ClientHello looks like today.
 * receive() must never throw; an alert we send must be a real RFC 8446 alert and be in the
 * output; and an untouched flight completes the handshake (checked for op-free inputs).
 */
import { TlsClient } from '../../packages/tls/src/client.ts';
import type { TlsOutput } from '../../packages/tls/src/connection.ts';
import { TlsServer } from '../../packages/tls/src/server.ts';
import { fixedCrypto, NOW, SERVER_NAME, signer, verifier } from './tls-peers.ts';
import { checkOutcome } from './tls-server.ts';

const ticketKey = new Uint8Array(32).fill(7);
const P256 = 0x0017;
const X25519 = 0x001d;

function server(mode: number): TlsServer {
  switch (mode % 5) {
    case 1: // RFC 8446 §4.1.4: our client offers an x25519 share; the server wants P-256 first.
      return new TlsServer({
        crypto: fixedCrypto(2),
        signer,
        ticketKey,
        groups: [P256, X25519],
        groupSelection: 'preference',
      });
    case 2: // RFC 8446 §4.3.2: a CertificateRequest (the client has no certificate to give).
      return new TlsServer({
        crypto: fixedCrypto(2),
        signer,
        ticketKey,
        clientAuth: { verifier, required: false },
      });
    case 3:
      return new TlsServer({ crypto: fixedCrypto(2), signer, ticketKey, alpnProtocols: ['h2', 'http/1.1'] });
    case 4:
      return new TlsServer({ crypto: fixedCrypto(2), signer, ticketKey, ticketsToSend: 2 });
    default:
      return new TlsServer({ crypto: fixedCrypto(2), signer, ticketKey });
  }
}

/** TLS records (RFC 8446 §5.1) in a byte stream, whole; a torn tail stays as one piece. */
function records(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    const n = at + 5 <= b.length ? 5 + ((b[at + 3]! << 8) | b[at + 4]!) : b.length - at;
    out.push(b.slice(at, at + n));
    at += n;
  }
  return out;
}

const joined = (o: TlsOutput): Uint8Array => new Uint8Array(Buffer.concat(o.data));

export function fuzz(data: Uint8Array): void {
  const mode = data[0] ?? 0;
  const c = new TlsClient({
    crypto: fixedCrypto(1),
    serverName: SERVER_NAME,
    verifier,
    alpnProtocols: ['http/1.1'],
  });
  const s = server(mode);
  let toServer = joined(c.start(NOW));
  let queue = records(joined(s.receive(toServer, NOW)));
  let at = 1;
  const u8 = (): number => data[at++] ?? 0;
  const u16 = (): number => (u8() << 8) | u8();
  const deliver = (b: Uint8Array): void => {
    const out = c.receive(b, NOW);
    checkOutcome(out);
    toServer = joined(out);
    // After a HelloRetryRequest the client's second ClientHello goes to the server, whose
    // answer joins the queue (RFC 8446 §4.1.4).
    if (toServer.length && s.state !== 'CONNECTED') {
      const more = records(joined(s.receive(toServer, NOW)));
      queue = queue.concat(more);
    }
  };
  for (let ops = 0; ops < 48 && at < data.length; ops++) {
    const op = u8() % 8;
    const next = queue.shift();
    if (!next) break;
    switch (op) {
      case 0:
      case 1:
        deliver(next);
        break;
      case 2: {
        // The same record over two reads.
        const cut = u16() % (next.length + 1);
        deliver(next.subarray(0, cut));
        deliver(next.subarray(cut));
        break;
      }
      case 3: {
        const i = u16() % next.length;
        next[i] = next[i]! ^ (u8() | 1);
        deliver(next);
        break;
      }
      case 4: // dropped
        break;
      case 5:
        deliver(next);
        queue.unshift(next.slice());
        break;
      case 6: {
        // A record of any type in the clear, before this one (RFC 8446 §5: content types).
        const type = u8();
        const body = data.subarray(at, at + (u8() & 0x3f));
        at += body.length;
        deliver(new Uint8Array([type, 3, 3, body.length >> 8, body.length & 0xff, ...body]));
        queue.unshift(next);
        break;
      }
      case 7: {
        // Two records in one read.
        const other = queue.shift() ?? new Uint8Array(0);
        deliver(new Uint8Array([...next, ...other]));
        break;
      }
    }
  }
  const untouched = at >= data.length && data.length <= 1;
  for (let r = queue.shift(), n = 0; r && n < 64; r = queue.shift(), n++) deliver(r);
  if (untouched && c.state !== 'CONNECTED')
    throw new Error(`an untouched flight (mode ${mode % 5}) ends in ${c.state}`);
}
export const maxLen = 512;
