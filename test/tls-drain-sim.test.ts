/**
 * After a fatal alert our TlsSocket shuts down its sending side and reads until the peer ends
 * (bounded by closeTimeoutMs) before it closes the transport (issue #12). Over our TCP on the
 * simulated network, where closing a socket with unread bytes aborts the connection with a RST
 * (RFC 9293 §3.10.5, as Linux does, RFC 2525 §2.17) and the abort drops what was not yet sent:
 * the client must still read the server's alert, not a reset. (Here the alert leaves before
 * the abort, so this also passed before the drain; the discriminating case is the kernel-like
 * pair in packages/tls/test/socket-drain.test.ts.)
 */
import { Sim } from '@stepwire/sim';
import { expect, it } from 'vitest';
import { TlsClient } from '../packages/tls/src/client.ts';
import { nobleCrypto } from '../packages/tls/src/crypto/noble.ts';
import { TlsServer } from '../packages/tls/src/server.ts';
import { TlsError, TlsSocket } from '../packages/tls/src/socket.ts';
import { testPki } from '../packages/tls/test/helpers/mitm.ts';

it('a client that sends a bad record and more data after the handshake reads our alert, not a RST', async () => {
  const sim = new Sim({ seed: 12 });
  const pki = testPki(Date.now());
  const server = sim.b.tcp.createServer((s) => {
    const t = new TlsSocket(s, new TlsServer({ signer: pki.signer(pki.leaf), crypto: nobleCrypto }), {
      closeTimeoutMs: 2000,
    });
    t.on('error', () => {});
  });
  server.listen(443);
  try {
    const raw = sim.a.tcp.connect({ host: sim.b.ipv4, port: 443 });
    const client = new TlsSocket(
      raw,
      new TlsClient({ serverName: 'stepwire.test', verifier: pki.serverVerifier(), crypto: nobleCrypto }),
    );
    let error: Error | undefined;
    client.on('error', (e) => {
      error ??= e;
    });
    const closed = new Promise((resolve) => client.on('close', resolve));
    const secure = new Promise((resolve) => client.once('secure', resolve));
    client.startHandshake();
    await sim.run(secure);
    // A record of unknown type (RFC 8446 §5: unexpected_message), then 64 KiB that the server
    // will never read as TLS, all in one go.
    raw.write(Uint8Array.of(0x63, 3, 3, 0, 1, 0));
    raw.write(Buffer.alloc(1 << 16, 0x41));
    await sim.run(closed);
    expect(error).toBeInstanceOf(TlsError);
    expect(error).toMatchObject({ alert: 'unexpected_message', sentByUs: false });
  } finally {
    server.close();
    sim.close();
  }
});
