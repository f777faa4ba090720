/**
 * Our QuicConnection (with our TLS in QUIC mode) against Cloudflare's quiche, in memory:
 * datagrams ferried between the two sans-I/O peers, both directions of the handshake, a
 * large transfer, many streams, loss, resumption with 0-RTT and a clean close. quiche runs
 * its timers on the real clock, so our connection gets real milliseconds too.
 */
import { AntiReplayCache, pki, type SessionTicket } from '@stepwire/tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { echoThroughQuiche, ferry, ourQuicClient, ourQuicServer, QuichePeer } from './support/quiche.ts';

const ALPN = 'hq-interop';
let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});
// Wall-clock milliseconds: TLS checks certificate validity and ticket ages against `now`.
const now = () => Date.now();

function ourClient(o: { session?: SessionTicket; earlyData?: boolean } = {}): QuicConnection {
  return ourQuicClient(creds.ca.certificatePem, ALPN, {
    tls: { ...(o.session ? { session: o.session } : {}), ...(o.earlyData ? { earlyData: true } : {}) },
  });
}

/** Our server connection for the client's first Initial, as the endpoint would make it. */
function ourServer(first: Uint8Array, o: { antiReplay?: AntiReplayCache; ticketKey?: Uint8Array } = {}) {
  return ourQuicServer(first, creds.leaf, ALPN, {
    ...(o.antiReplay ? { antiReplay: o.antiReplay, maxEarlyData: 1 << 20 } : {}),
    ...(o.ticketKey ? { ticketKey: o.ticketKey } : {}),
  });
}

/** quiche as the server, with our test leaf certificate. */
function quicheServer(): QuichePeer {
  return new QuichePeer({
    role: 'server',
    certPem: creds.leaf.certificatePem,
    keyPem: creds.leaf.privateKeyPem,
    alpn: [ALPN],
  });
}

function events(c: QuicConnection, into: QuicConnectionEvent[]): void {
  for (let e = c.pollEvent(); e; e = c.pollEvent()) into.push(e);
}

describe('our QUIC client against quiche', () => {
  it('handshakes (ALPN, certificate verified by our PKI) and transfers 1 MB each way on one stream', async () => {
    const client = ourClient();
    const server = quicheServer();
    const ev: QuicConnectionEvent[] = [];
    await ferry(client, server, ev, () => ev.some((e) => e.type === 'connected') && server.established);
    expect(ev.find((e) => e.type === 'connected')).toEqual({ type: 'connected', alpn: ALPN });
    expect(server.established).toBe(true);

    const body = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    // quiche echoes what arrives, as its flow control allows.
    const echo = await echoThroughQuiche(client, server, ev, body);
    expect(echo.serverFin).toBe(true);
    expect(echo.atServer.equals(Buffer.from(body))).toBe(true);
    expect(echo.back.equals(Buffer.from(body))).toBe(true);
    client.close(now(), 0, 'bye');
    await ferry(client, server, ev, () => server.peerError() !== null, { seconds: 2 });
    expect(server.peerError()).toMatchObject({ isApp: true, errorCode: 0 });
  });

  it('100 streams in parallel, each its own body, and 5% of datagrams lost both ways', async () => {
    const client = ourClient();
    const server = quicheServer();
    const ev: QuicConnectionEvent[] = [];
    let seed = 12345;
    const lossy = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % 100 < 5;
    };
    await ferry(client, server, ev, () => ev.some((e) => e.type === 'connected'), {
      drop: lossy,
      seconds: 20,
    });
    expect(ev.some((e) => e.type === 'connected')).toBe(true);
    const want = new Map<number, Buffer>();
    for (let i = 0; i < 100; i++) {
      const id = client.openStream('bidi');
      const b = Buffer.alloc(2000 + i * 37, i);
      want.set(id, b);
      client.write(id, b, true);
    }
    const got = new Map<number, Buffer[]>();
    const fins = new Set<number>();
    await ferry(client, server, ev, () => fins.size === 100, {
      drop: lossy,
      seconds: 30,
      onRound: () => {
        for (const sid of server.readable()) {
          const r = server.read(sid);
          got.set(sid, [...(got.get(sid) ?? []), Buffer.from(r.data)]);
          if (r.fin) fins.add(sid);
        }
      },
    });
    expect(fins.size).toBe(100);
    for (const [id, b] of want) expect(Buffer.concat(got.get(id) ?? []).equals(b)).toBe(true);
  });
});

describe('quiche client against our QUIC server', () => {
  it('handshakes, the client sends a stream, our server reads it whole and answers', async () => {
    const client = new QuichePeer({ role: 'client', caPem: creds.ca.certificatePem, alpn: [ALPN] });
    const first = client.drain();
    const server = ourServer(first[0]!);
    for (const d of first) server.handle(d, now());
    const ev: QuicConnectionEvent[] = [];
    await ferry(server, client, ev, () => client.established && ev.some((e) => e.type === 'connected'));
    expect(client.established).toBe(true);
    expect(client.alpn).toBe(ALPN);
    const body = Buffer.alloc(300_000, 0x5a);
    let sent = 0;
    const got: Uint8Array[] = [];
    let fin = false;
    let answered = false;
    let reply: Buffer = Buffer.alloc(0);
    await ferry(server, client, ev, () => reply.toString() === 'got 300000', {
      seconds: 20,
      onRound: () => {
        if (sent < body.length) sent += client.send(0, body.subarray(sent), true);
        for (const e of ev.splice(0)) {
          if (e.type === 'stream-data' && e.id === 0) {
            got.push(e.data);
            fin ||= e.fin;
          }
        }
        if (fin && !answered) {
          answered = true;
          server.write(0, Buffer.from(`got ${Buffer.concat(got).length}`), true);
        }
        for (const sid of client.readable()) reply = Buffer.concat([reply, client.read(sid).data]);
      },
    });
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(reply.toString()).toBe('got 300000');
  });

  it('resumes with a ticket we issued and sends 0-RTT data our server accepts', async () => {
    const antiReplay = new AntiReplayCache();
    const ticketKey = new Uint8Array(32).fill(3);
    const c1 = new QuichePeer({
      role: 'client',
      caPem: creds.ca.certificatePem,
      alpn: [ALPN],
      earlyData: true,
    });
    const f1 = c1.drain();
    const s1 = ourServer(f1[0]!, { antiReplay, ticketKey });
    for (const d of f1) s1.handle(d, now());
    const ev1: QuicConnectionEvent[] = [];
    await ferry(s1, c1, ev1, () => c1.established && c1.session() !== null, { seconds: 5 });
    const session = c1.session();
    expect(session).not.toBeNull();

    const c2 = new QuichePeer({
      role: 'client',
      caPem: creds.ca.certificatePem,
      alpn: [ALPN],
      earlyData: true,
      session: session!,
    });
    // 0-RTT: once the ClientHello is out, the request follows before any answer.
    const hello = c2.drain();
    expect(c2.inEarlyData).toBe(true);
    c2.send(0, Buffer.from('early hello'), true);
    const f2 = [...hello, ...c2.drain()];
    const s2 = ourServer(f2[0]!, { antiReplay, ticketKey });
    for (const d of f2) s2.handle(d, now());
    const ev2: QuicConnectionEvent[] = [];
    events(s2, ev2);
    // The stream data was opened from 0-RTT packets, before the client's Finished arrived.
    const early = ev2.find((e) => e.type === 'stream-data');
    expect(early && early.type === 'stream-data' && Buffer.from(early.data).toString()).toBe('early hello');
    await ferry(s2, c2, ev2, () => c2.established, { seconds: 5 });
    expect(c2.resumed).toBe(true);
  });
});
