/**
 * The QUIC interop runner's remaining cases against Cloudflare's quiche, our second
 * independent peer (quiche-interop.test.ts has handshake, transfer, many streams, loss,
 * resumption and 0-RTT): ChaCha20, key update, Retry, migration in both directions and
 * DATAGRAM frames. As there, the two sans-I/O peers are paired in memory on the real clock;
 * here each datagram also carries its addresses, so a peer that moves is seen moving.
 */
import { CipherSuite, pki } from '@stepwire/tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent, TransportConfig } from '../src/connection/types.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import {
  echoThroughQuiche,
  ferry as ferryDatagrams,
  type HostPort,
  ourQuicClient,
  ourQuicServer,
  QuichePeer,
} from './support/quiche.ts';
import { quicServerTls } from './support/tls.ts';

const ALPN = 'hq-interop';
let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});
const now = () => Date.now();
const OURS: HostPort = { host: '127.0.0.1', port: 50_000 };
const QUICHE: HostPort = { host: '127.0.0.1', port: 4433 };
const remoteOf = (h: HostPort) => ({ address: h.host, port: h.port });

function ourClient(
  o: { cipherSuites?: number[]; transport?: Partial<TransportConfig> } = {},
): QuicConnection {
  return ourQuicClient(creds.ca.certificatePem, ALPN, {
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.cipherSuites ? { tls: { cipherSuites: o.cipherSuites } } : {}),
  });
}

const ourServer = (first: Uint8Array): QuicConnection => ourQuicServer(first, creds.leaf, ALPN);

function quicheServer(o: { datagrams?: number } = {}): QuichePeer {
  return new QuichePeer({
    role: 'server',
    certPem: creds.leaf.certificatePem,
    keyPem: creds.leaf.privateKeyPem,
    alpn: [ALPN],
    local: QUICHE,
    remote: OURS,
    ...o,
  });
}

/** quiche as the client at QUICHE, verifying our test CA. */
function quicheClient(): QuichePeer {
  return new QuichePeer({
    role: 'client',
    caPem: creds.ca.certificatePem,
    alpn: [ALPN],
    local: QUICHE,
    remote: OURS,
  });
}

/**
 * The shared ferry (support/quiche.ts) with addresses on every datagram: ours are sent from
 * `ourAddress()` (a client that migrated sends from its new one), quiche's from the address its
 * send reports.
 */
function ferry(
  ours: QuicConnection,
  quiche: QuichePeer,
  ev: QuicConnectionEvent[],
  done: () => boolean,
  o: { seconds?: number; ourAddress?: () => HostPort; onRound?: () => void } = {},
): Promise<void> {
  const { ourAddress = () => OURS, ...rest } = o;
  return ferryDatagrams(ours, quiche, ev, done, { ...rest, paths: { ourAddress } });
}

/** echoThroughQuiche (support/quiche.ts) with addresses on every datagram, as `ferry` above. */
async function echo(
  client: QuicConnection,
  server: QuichePeer,
  ev: QuicConnectionEvent[],
  body: Uint8Array,
  o: { midway?: () => void; ourAddress?: () => HostPort } = {},
): Promise<Buffer> {
  const { ourAddress = () => OURS, midway } = o;
  const r = await echoThroughQuiche(client, server, ev, body, {
    ...(midway ? { midway } : {}),
    ferry: { paths: { ourAddress } },
  });
  expect(r.midwayDone || !midway).toBe(true);
  return r.back;
}

const body = (n: number, k: number) => new Uint8Array(n).map((_, i) => (i * k) & 0xff);

async function connect(client: QuicConnection, server: QuichePeer, ev: QuicConnectionEvent[]): Promise<void> {
  await ferry(client, server, ev, () => ev.some((e) => e.type === 'connected') && server.established);
  expect(server.established).toBe(true);
  expect(ev.find((e) => e.type === 'connected')).toEqual({ type: 'connected', alpn: ALPN });
  ev.length = 0;
}

describe('quiche, the remaining interop-runner cases', () => {
  it('ChaCha20: our client offers only TLS_CHACHA20_POLY1305_SHA256 and 300 kB echo through quiche', async () => {
    const client = ourClient({ cipherSuites: [CipherSuite.TLS_CHACHA20_POLY1305_SHA256] });
    const server = quicheServer();
    const ev: QuicConnectionEvent[] = [];
    await connect(client, server, ev);
    const b = body(300_000, 13);
    expect((await echo(client, server, ev, b)).equals(Buffer.from(b))).toBe(true);
  });

  it('key update (RFC 9001 §6): we update twice during a transfer, quiche follows, every byte arrives', async () => {
    const client = ourClient();
    const server = quicheServer();
    const ev: QuicConnectionEvent[] = [];
    await connect(client, server, ev);
    // The first update before any data; the second midway, once the first is acknowledged
    // (§6.5: not before then). quiche must answer in the new phase or the echo stalls.
    expect(client.initiateKeyUpdate(now())).toBe(true);
    const b = body(400_000, 7);
    const back = await echo(client, server, ev, b, {
      midway: () => expect(client.initiateKeyUpdate(now())).toBe(true),
    });
    expect(back.equals(Buffer.from(b))).toBe(true);
    expect(client.keyUpdates).toBe(2);
  });

  it('our client migrates to a new port mid-transfer (RFC 9000 §9.2); quiche sees the peer move and the echo completes', async () => {
    const client = ourClient();
    const server = quicheServer();
    const ev: QuicConnectionEvent[] = [];
    await connect(client, server, ev);
    // migrate() needs the handshake confirmed (HANDSHAKE_DONE) and a spare connection ID of
    // quiche's, which quiche only issues when its application asks (RFC 9000 §9, §9.5).
    server.issueConnectionIds(1);
    await ferry(client, server, ev, () => false, { seconds: 0.2 });
    let address = OURS;
    const b = body(300_000, 5);
    const back = await echo(client, server, ev, b, {
      ourAddress: () => address,
      midway: () => {
        client.migrate(now(), { portOnly: true });
        address = { host: OURS.host, port: OURS.port + 1 };
      },
    });
    expect(back.equals(Buffer.from(b))).toBe(true);
    expect((client.stats().counters as Record<string, number>)['quic.path.client-migrated']).toBe(1);
    const moves: unknown[] = [];
    for (let e = server.connection.pathEventNext(); e; e = server.connection.pathEventNext()) moves.push(e);
    // quiche validated the new path (PATH_CHALLENGE/PATH_RESPONSE) and moved to it.
    const peer = { local: QUICHE, peer: address };
    expect(moves).toContainEqual({ type: 'New', ...peer });
    expect(moves).toContainEqual({ type: 'Validated', ...peer });
    expect(moves).toContainEqual(expect.objectContaining({ type: 'PeerMigrated', new: address }));
  });

  it('quiche migrates to a new local port (RFC 9000 §9.3): our server validates the new path and answers there', async () => {
    const client = quicheClient();
    const first = client.drain();
    const server = ourServer(first[0]!);
    for (const d of first) server.handle(d, now(), remoteOf(QUICHE));
    const ev: QuicConnectionEvent[] = [];
    await ferry(server, client, ev, () => client.established && ev.some((e) => e.type === 'connected'));
    expect(client.established).toBe(true);
    // quiche needs a spare connection ID of ours before it can move, and one of its own to move with.
    client.issueConnectionIds(1);
    await ferry(server, client, ev, () => client.connection.availableDcids() > 0, { seconds: 5 });
    const moved: HostPort = { host: QUICHE.host, port: QUICHE.port + 7 };
    client.migrateSource(moved);
    const got: Uint8Array[] = [];
    let fin = false;
    let reply = Buffer.alloc(0);
    let sent = false;
    await ferry(server, client, ev, () => reply.toString() === 'moved', {
      ourAddress: () => OURS,
      onRound: () => {
        if (!sent) sent = client.send(0, Buffer.from('after the move'), true) > 0;
        for (const e of ev.splice(0))
          if (e.type === 'stream-data' && e.id === 0) {
            got.push(e.data);
            if (e.fin && !fin) {
              fin = true;
              server.write(0, Buffer.from('moved'), true);
            }
          }
        for (const sid of client.readable()) reply = Buffer.concat([reply, client.read(sid).data]);
      },
    });
    expect(Buffer.concat(got).toString()).toBe('after the move');
    expect(reply.toString()).toBe('moved');
    // Our server now sends to the new address, validated by PATH_CHALLENGE/PATH_RESPONSE.
    expect(server.remote).toEqual(remoteOf(moved));
    expect((server.stats().counters as Record<string, number>)['quic.path.migrated']).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('Retry (RFC 9000 §8.1.2): quiche follows our endpoint Retry, echoes the token, and the handshake completes', async () => {
    const endpoint = new QuicEndpoint({
      server: {
        retry: true,
        tls: quicServerTls(creds.leaf, ALPN),
      },
    });
    const client = quicheClient();
    let accepted: QuicConnection | undefined;
    let retries = 0;
    const deadline = Date.now() + 10_000;
    while (!(client.established && accepted) && Date.now() < deadline) {
      let moved = 0;
      for (const d of client.drainPaths()) {
        moved++;
        endpoint.handle(d.data, remoteOf(d.from), now());
      }
      for (let t = endpoint.pollTransmit(now()); t; t = endpoint.pollTransmit(now())) {
        moved++;
        // A Retry is a long header packet of type 3 (RFC 9000 §17.2.5).
        if ((t.datagram[0]! & 0xf0) === 0xf0) retries++;
        client.receive(t.datagram, OURS);
      }
      accepted ??= endpoint.accept();
      const t = endpoint.pollTimeout();
      if (t !== undefined && t <= now()) endpoint.handleTimeout(now());
      if (client.timeout() === 0) client.onTimeout();
      if (moved === 0) await new Promise((r) => setTimeout(r, 2));
    }
    expect(retries).toBe(1);
    expect(client.established).toBe(true);
    expect(accepted).toBeDefined();
  });

  it('DATAGRAM frames (RFC 9221) both ways between our client and quiche', async () => {
    const client = ourClient({ transport: { maxDatagramFrameSize: 1200 } });
    const server = quicheServer({ datagrams: 64 });
    const ev: QuicConnectionEvent[] = [];
    await connect(client, server, ev);
    const ours = Array.from({ length: 10 }, (_, i) => `from us ${i}`);
    const theirs = Array.from({ length: 10 }, (_, i) => `from quiche ${i}`);
    for (const m of ours) client.sendDatagram(Buffer.from(m));
    for (const m of theirs) expect(server.sendDatagram(Buffer.from(m))).toBe(true);
    const atQuiche: string[] = [];
    const atUs: string[] = [];
    await ferry(client, server, ev, () => atQuiche.length === 10 && atUs.length === 10, {
      seconds: 5,
      onRound: () => {
        for (const d of server.readDatagrams()) atQuiche.push(Buffer.from(d).toString());
        for (const e of ev.splice(0)) if (e.type === 'datagram') atUs.push(Buffer.from(e.data).toString());
      },
    });
    // No loss in memory: every datagram arrives, in order.
    expect(atQuiche).toEqual(ours);
    expect(atUs).toEqual(theirs);
  });
});
