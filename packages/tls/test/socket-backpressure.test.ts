/**
 * TlsSocket passes its transport's backpressure on: a peer that does not read holds our
 * writer back, and the bytes waiting in the transport stay near its high-water mark
 * instead of growing with every write (as with net.Socket and node:tls).
 */
import { duplexPair } from 'node:stream';
import { beforeAll, expect, it } from 'vitest';
import { nodeCrypto } from '../src/crypto/index.ts';
import { accept, connect } from '../src/socket.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';

let ec: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
});

const once = (e: NodeJS.EventEmitter, ev: string) =>
  new Promise<void>((resolve) => e.once(ev, () => resolve()));

it('a peer that stops reading holds the writer back; everything arrives once it reads again', async () => {
  const [a, b] = duplexPair();
  const server = accept(b, { crypto: nodeCrypto, signer: signerFor(ec) });
  const client = connect(a, {
    crypto: nodeCrypto,
    serverName: 'stepwire.test',
    verifier: pinnedVerifier([ec]),
  });
  await Promise.all([once(client, 'secure'), once(server, 'secure')]);
  let received = 0;
  server.on('data', (d: Buffer) => {
    received += d.length;
  });
  // The server's side stops taking bytes off its transport.
  b.pause();
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let accepted = 0;
  // Write until the socket says stop; bounded, so a socket without backpressure fails here.
  for (let i = 0; i < 256 && client.write(chunk); i++) accepted += chunk.length;
  accepted += chunk.length;
  // Let any write callbacks that are due run: none may be while the peer is not reading.
  await new Promise((r) => setImmediate(r));
  expect(client.writableNeedDrain).toBe(true);
  expect(accepted).toBeLessThan(1024 * 1024);
  // Queued in the transport: about one batch of records, not everything written.
  expect(a.writableLength).toBeLessThan(4 * 64 * 1024);
  b.resume();
  await once(client, 'drain');
  while (received < accepted) await new Promise((r) => setImmediate(r));
  expect(received).toBe(accepted);
  client.destroy();
  server.destroy();
});
