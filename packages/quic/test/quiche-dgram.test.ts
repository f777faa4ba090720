/**
 * quiche over real UDP: @matrixai/quic's QUICClient and QUICServer (Cloudflare's quiche with
 * their own node:dgram socket layer) against our QuicDriver on node:dgram, both directions,
 * on loopback — the second independent peer over sockets, as ngtcp2 is (the in-memory
 * pairings in quiche-interop.test.ts and quiche-cases.test.ts cover the runner's cases).
 * Certificates are verified both ways by the peer's PKI: ours by quiche's BoringSSL with
 * our CA, quiche's by our verifier with the same CA.
 */
import { createHmac, timingSafeEqual, webcrypto } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { events, QUICClient, QUICServer, type QUICStream } from '@matrixai/quic';
import { pki } from '@stepwire/tls';
import { RealClock } from '@stepwire/wire';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

const ALPN = 'quic';
let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** @matrixai/quic logs every step at info level; the tests keep quiet. */
const silent: unknown = {
  getChild: () => silent,
  info: () => {},
  debug: () => {},
  warn: () => {},
  error: () => {},
};

const randomBytes = async (b: ArrayBuffer) => {
  webcrypto.getRandomValues(new Uint8Array(b));
};

async function loopbackSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanups.push(() => {
    s.close();
  });
  return s;
}

const body = (n: number) => new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff);

async function readAll(stream: QUICStream): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream.readable) parts.push(c);
  return Buffer.concat(parts);
}

describe('quiche over node:dgram on loopback', () => {
  it('quiche client → our server: the handshake (our certificate verified by BoringSSL) and 600 kB echoed on a stream', async () => {
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const clock = new RealClock();
    const driver = new QuicDriver(
      new QuicEndpoint({
        tlsEpoch: Date.now() - clock.now(),
        server: {
          tls: quicServerTls(creds.leaf, ALPN),
        },
      }),
      sock,
      clock,
      { onEvent: (conn, e) => e.type === 'stream-data' && conn.write(e.id, e.data, e.fin) },
    );
    cleanups.push(() => driver.close());
    const client = await QUICClient.createQUICClient({
      host: '127.0.0.1',
      port,
      serverName: 'stepwire.test',
      localHost: '127.0.0.1',
      crypto: { ops: { randomBytes } },
      config: { verifyPeer: true, ca: creds.ca.certificatePem, applicationProtos: [ALPN] },
      logger: silent as never,
    });
    cleanups.push(() => client.destroy({ force: true }));
    const stream = client.connection.newStream();
    const sent = body(600_000);
    const writer = stream.writable.getWriter();
    const echoed = readAll(stream);
    await writer.write(sent);
    await writer.close();
    expect((await echoed).equals(Buffer.from(sent))).toBe(true);
  });

  it('our client → quiche server: the handshake (quiche’s certificate verified by our PKI) and 600 kB echoed', async () => {
    const key = new Uint8Array(32).fill(9);
    const server = new QUICServer({
      crypto: {
        key: key.buffer,
        ops: {
          sign: async (k: ArrayBuffer, data: ArrayBuffer) => {
            const mac = createHmac('sha256', Buffer.from(k)).update(Buffer.from(data)).digest();
            return mac.buffer.slice(mac.byteOffset, mac.byteOffset + mac.length);
          },
          verify: async (k: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer) => {
            const mac = createHmac('sha256', Buffer.from(k)).update(Buffer.from(data)).digest();
            const got = Buffer.from(sig);
            return got.length === mac.length && timingSafeEqual(got, mac);
          },
        },
      },
      config: {
        key: creds.leaf.privateKeyPem,
        cert: creds.leaf.certificatePem,
        verifyPeer: false,
        applicationProtos: [ALPN],
      },
      logger: silent as never,
    });
    // quiche echoes every stream back: read it whole, write it back, close.
    server.addEventListener(events.EventQUICServerConnection.name, (evt: Event) => {
      const conn = (evt as unknown as events.EventQUICServerConnection).detail;
      conn.addEventListener(events.EventQUICConnectionStream.name, (se: Event) => {
        const stream = (se as unknown as events.EventQUICConnectionStream).detail;
        void (async () => {
          const got = await readAll(stream);
          const w = stream.writable.getWriter();
          await w.write(got);
          await w.close();
        })();
      });
    });
    await server.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.stop({ force: true }));

    const sock = await loopbackSocket();
    const clock = new RealClock();
    const ev: QuicConnectionEvent[] = [];
    let onChange = () => {};
    const driver = new QuicDriver(new QuicEndpoint({ tlsEpoch: Date.now() - clock.now() }), sock, clock, {
      onEvent: (_c, e) => {
        ev.push(e);
        onChange();
      },
    });
    cleanups.push(() => driver.close());
    const until = (cond: () => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000);
        onChange = () => {
          if (cond()) {
            clearTimeout(t);
            resolve();
          }
        };
        onChange();
      });
    const conn = driver.connect(
      { address: '127.0.0.1', port: server.port as number },
      {
        tls: quicClientTls(creds.ca.certificatePem, ALPN),
      },
    );
    await until(() => ev.some((e) => e.type === 'connected'), 'the handshake');
    expect(ev.find((e) => e.type === 'connected')).toMatchObject({ alpn: ALPN });
    const sent = body(600_000);
    const id = conn.openStream('bidi');
    conn.write(id, sent, true);
    driver.flush();
    const back: Uint8Array[] = [];
    let fin = false;
    await until(() => {
      for (const e of ev.splice(0))
        if (e.type === 'stream-data' && e.id === id) {
          back.push(e.data);
          fin ||= e.fin;
        }
      return fin;
    }, 'the echo');
    expect(Buffer.concat(back).equals(Buffer.from(sent))).toBe(true);
  });
});
