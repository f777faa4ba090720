/**
 * After a fatal alert the TlsSocket shuts down its sending side and keeps reading until the
 * peer ends (bounded by closeTimeoutMs) before it closes the transport (issue #12): a TCP
 * socket closed with the peer's bytes still unread answers with a reset, and the peer's stack
 * then loses our alert. Over real loopback TCP (node:net), where that reset happens.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { TlsClient } from '../src/client.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { TlsServer } from '../src/server.ts';
import { TlsError, TlsSocket } from '../src/socket.ts';
import { type TestPki, testPki } from './helpers/mitm.ts';

const NOW = Date.now();
let pki: TestPki;
beforeAll(() => {
  pki = testPki(NOW);
});
let tcp: Server | undefined;
afterEach(() => {
  tcp?.close();
});

it('a client that sends a bad record and more data right after the handshake reads our alert, not a reset', async () => {
  let serverTransport: Socket | undefined;
  tcp = createServer((s) => {
    serverTransport = s;
    const t = new TlsSocket(s, new TlsServer({ signer: pki.signer(pki.leaf), crypto: nobleCrypto }), {
      closeTimeoutMs: 300,
    });
    t.on('error', () => {});
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const port = (tcp.address() as { port: number }).port;
  const raw = tcpConnect(port, '127.0.0.1');
  await once(raw, 'connect');
  const client = new TlsSocket(
    raw,
    new TlsClient({ serverName: 'stepwire.test', verifier: pki.serverVerifier(), crypto: nobleCrypto }),
  );
  let error: Error | undefined;
  client.on('error', (e) => {
    error ??= e;
  });
  client.startHandshake();
  await once(client, 'secure');
  // A record of unknown type (RFC 8446 §5: unexpected_message), then 1 MiB more the server
  // will not read as TLS. The client reads nothing until the server has closed its socket.
  raw.pause();
  raw.write(Uint8Array.of(0x63, 3, 3, 0, 1, 0));
  raw.write(Buffer.alloc(1 << 20, 0x41));
  const server = serverTransport;
  if (!server) throw new Error('no server connection');
  if (!server.destroyed) await once(server, 'close');
  const closed = new Promise((resolve) => client.on('close', resolve));
  raw.resume();
  await closed;
  expect(error).toBeInstanceOf(TlsError);
  expect(error).toMatchObject({ alert: 'unexpected_message', sentByUs: false });
});
