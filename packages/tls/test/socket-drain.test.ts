/**
 * After a fatal alert the TlsSocket shuts down its sending side and keeps reading until the
 * peer ends (bounded by closeTimeoutMs) before it closes the transport (issue #12): a TCP
 * socket closed with the peer's bytes still unread answers with a reset and throws away what
 * it had not sent yet: the peer never reads our alert. First over a Duplex pair that models
 * exactly that close (as Linux's tcp_close does, RFC 2525 §2.17): it fails without the drain.
 * Then over real loopback TCP, where Linux had already sent the alert before the reset and
 * keeps it readable, so that case passes either way; it guards the end-to-end behaviour.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
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

/**
 * One end of a pair that behaves like a kernel TCP socket on close: writes are taken at once
 * (into the "send buffer") and delivered on a later turn; destroy() while bytes from the peer
 * are still on their way (unread) is an abortive close: what we had not delivered yet is
 * dropped and the peer gets ECONNRESET. A destroy with nothing unread delivers, then ends.
 */
class KernelLike extends Duplex {
  peer!: KernelLike;
  /** Deliveries scheduled but not yet made, each way. */
  private sending: NodeJS.Immediate[] = [];
  inbound = 0;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    const p = this.peer;
    p.inbound++;
    const t = setImmediate(() => {
      this.sending = this.sending.filter((x) => x !== t);
      p.inbound--;
      if (!p.destroyed) p.push(chunk);
    });
    this.sending.push(t);
    cb();
  }
  override _final(cb: () => void): void {
    const p = this.peer;
    const t = setImmediate(() => {
      if (!p.destroyed) p.push(null);
    });
    this.sending.push(t);
    cb();
  }
  override _read(): void {}
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.inbound > 0) {
      for (const t of this.sending) clearImmediate(t);
      this.sending = [];
      const p = this.peer;
      setImmediate(() => p.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })));
    } else if (!this.writableEnded) {
      const p = this.peer;
      setImmediate(() => {
        if (!p.destroyed) p.push(null);
      });
    }
    cb(err);
  }
}

function kernelPair(): [KernelLike, KernelLike] {
  const a = new KernelLike();
  const b = new KernelLike();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

it('kernel-like pair: after a bad record and more data, the client reads our alert, not ECONNRESET', async () => {
  const [c, s] = kernelPair();
  const server = new TlsSocket(s, new TlsServer({ signer: pki.signer(pki.leaf), crypto: nobleCrypto }));
  server.on('error', () => {});
  const client = new TlsSocket(
    c,
    new TlsClient({ serverName: 'stepwire.test', verifier: pki.serverVerifier(), crypto: nobleCrypto }),
  );
  let error: Error | undefined;
  client.on('error', (e) => {
    error ??= e;
  });
  const closed = new Promise((resolve) => client.on('close', resolve));
  client.startHandshake();
  await once(client, 'secure');
  // A record of unknown type (RFC 8446 §5: unexpected_message) and more bytes right behind it,
  // still in flight when the server fails on the first.
  c.write(Uint8Array.of(0x63, 3, 3, 0, 1, 0));
  c.write(Buffer.alloc(1000, 0x41));
  await closed;
  expect(error).toMatchObject({ alert: 'unexpected_message', sentByUs: false });
});

it('loopback TCP: a client that sends a bad record and more data right after the handshake reads our alert', async () => {
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
