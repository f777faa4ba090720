/**
 * Interop with an independent implementation: Node's node:tls (OpenSSL) over an in-memory
 * stream pair. Our client against OpenSSL's server and OpenSSL's client against our
 * server: handshakes (with HelloRetryRequest and resumption), data both ways, and the
 * exporter and key log compared across the two implementations.
 */
import { type Duplex, duplexPair } from 'node:stream';
import * as tls from 'node:tls';
import { toHex, utf8 } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { NamedGroup } from '../src/codec/common.ts';
import type { TlsConnection, TlsEvent, TlsOutput } from '../src/connection.ts';
import { TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { PROVIDERS } from './providers.ts';

let ec: TestIdentity;
let rsa: TestIdentity;
beforeAll(() => {
  ec = makeIdentity('stepwire.test', 'ec');
  rsa = makeIdentity('stepwire.test', 'rsa');
});

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Run one of our machines on a Node stream: the smallest possible driver. */
function attach(conn: TlsConnection, sock: Duplex) {
  const events: TlsEvent[] = [];
  const emit = (o: TlsOutput) => {
    for (const d of o.data) sock.write(d);
    events.push(...o.events);
  };
  sock.on('data', (b: Buffer) => emit(conn.receive(new Uint8Array(b), Date.now())));
  const received = () =>
    Buffer.concat(
      events.filter((e): e is Extract<TlsEvent, { type: 'data' }> => e.type === 'data').map((e) => e.data),
    );
  return { events, emit, received };
}

describe.each(PROVIDERS)('interop with node:tls ($name)', (crypto) => {
  async function ourClientAgainstNode(
    copts: Partial<TlsClientOptions>,
    sopts: tls.TlsOptions & { onKeylog?: (l: string) => void; context?: tls.SecureContext } = {},
  ) {
    const [ours, theirs] = duplexPair();
    const server = new tls.TLSSocket(theirs, {
      isServer: true,
      requestCert: sopts.requestCert,
      rejectUnauthorized: false,
      secureContext:
        sopts.context ??
        tls.createSecureContext({
          cert: sopts.cert ?? ec.certPem,
          key: sopts.key ?? ec.keyPem,
          minVersion: 'TLSv1.3',
          ...sopts,
        }),
      ALPNProtocols: sopts.ALPNProtocols,
    });
    server.on('keylog', (l: Buffer) => sopts.onKeylog?.(l.toString().trim()));
    server.on('data', (d: Buffer) => server.write(Buffer.concat([utf8('echo:'), d])));
    let serverError: Error | undefined;
    server.on('error', (e) => {
      serverError = e;
    });
    let secure = false;
    server.on('secure', () => {
      secure = true;
    });
    const client = new TlsClient({
      crypto,
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([ec, rsa]),
      ...copts,
    });
    const io = attach(client, ours);
    io.emit(client.start(Date.now()));
    await until(() => client.state === 'CONNECTED' || client.isClosed, 'our client to connect');
    return { client, server, io, secure: () => secure, serverError: () => serverError };
  }

  it('our client completes a handshake with OpenSSL, exchanges data and agrees on secrets', async () => {
    const nodeLog: string[] = [];
    const ourLog: string[] = [];
    const { client, server, io } = await ourClientAgainstNode(
      { keyLog: (l) => ourLog.push(l) },
      { onKeylog: (l) => nodeLog.push(l) },
    );
    expect(client.state).toBe('CONNECTED');
    io.emit(client.send(utf8('hello'), Date.now()));
    await until(() => io.received().toString() === 'echo:hello', 'the echo');
    // RFC 8446 §7.5 exporter: both implementations derive the same bytes.
    const ctx = utf8('context');
    expect(toHex(client.exportKeyingMaterial('EXPERIMENTAL-stepwire', ctx, 48))).toBe(
      server.exportKeyingMaterial(48, 'EXPERIMENTAL-stepwire', Buffer.from(ctx)).toString('hex'),
    );
    await until(() => nodeLog.length >= 5, 'node key log');
    expect(ourLog.sort()).toEqual(nodeLog.slice(0, 5).sort());
    // Node sends its tickets after the handshake; they arrive as session-ticket events.
    await until(() => io.events.some((e) => e.type === 'session-ticket'), 'a session ticket');
    io.emit(client.close(Date.now()));
    server.destroy();
  });

  it('our client follows OpenSSL through a HelloRetryRequest and resumes with its ticket', async () => {
    // One SecureContext holds Node's ticket keys, so a second server socket can resume.
    const context = tls.createSecureContext({
      cert: ec.certPem,
      key: ec.keyPem,
      minVersion: 'TLSv1.3',
      ecdhCurve: 'P-256',
    });
    const first = await ourClientAgainstNode({}, { context });
    expect(first.client.state).toBe('CONNECTED');
    expect(first.io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({
      group: 'secp256r1',
      resumed: false,
    });
    await until(() => first.io.events.some((e) => e.type === 'session-ticket'), 'a session ticket');
    const ticket = first.io.events.find(
      (e): e is Extract<TlsEvent, { type: 'session-ticket' }> => e.type === 'session-ticket',
    )!.ticket;
    first.server.destroy();
    const second = await ourClientAgainstNode({ session: ticket }, { context });
    expect(second.client.state).toBe('CONNECTED');
    expect(second.io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({
      resumed: true,
      peerCertificates: [],
    });
    expect(second.server.isSessionReused()).toBe(true);
    second.io.emit(second.client.send(utf8('again'), Date.now()));
    await until(() => second.io.received().toString() === 'echo:again', 'the echo after resumption');
    second.server.destroy();
  });

  it('our client presents a certificate to OpenSSL, and OpenSSL to our server', async () => {
    const a = await ourClientAgainstNode(
      { certificate: signerFor(rsa) },
      {
        context: tls.createSecureContext({
          cert: ec.certPem,
          key: ec.keyPem,
          ca: rsa.certPem,
          minVersion: 'TLSv1.3',
        }),
        requestCert: true,
      },
    );
    expect(a.client.state).toBe('CONNECTED');
    await until(() => a.secure(), 'node to finish its handshake');
    // OpenSSL has our chain and accepted our CertificateVerify (a bad one aborts its handshake, below).
    expect(a.server.getPeerX509Certificate()?.raw.equals(Buffer.from(rsa.certDer))).toBe(true);
    a.io.emit(a.client.send(utf8('authenticated'), Date.now()));
    await until(() => a.io.received().toString() === 'echo:authenticated', 'the echo');
    a.server.destroy();

    const forged = { ...signerFor(rsa), sign: () => crypto.randomBytes(256) };
    const c = await ourClientAgainstNode(
      { certificate: forged },
      {
        context: tls.createSecureContext({
          cert: ec.certPem,
          key: ec.keyPem,
          ca: rsa.certPem,
          minVersion: 'TLSv1.3',
        }),
        requestCert: true,
      },
    );
    await until(() => c.serverError() !== undefined, 'OpenSSL to refuse a forged CertificateVerify');
    // OpenSSL's RSA-PSS check rejects the signature ("last octet invalid" or similar).
    expect(c.serverError()!.message).toMatch(/rsa|signature|pss/i);
    expect(c.secure()).toBe(false);
    c.server.destroy();

    const b = await nodeClientAgainstOurs(
      { clientAuth: { verifier: pinnedVerifier([rsa]), required: true } },
      { cert: rsa.certPem, key: rsa.keyPem },
    );
    expect(b.server.state).toBe('CONNECTED');
    const done = b.io.events.find(
      (e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete',
    );
    expect(done!.peerCertificates[0]).toEqual(rsa.certDer);
    b.client.destroy();
  });

  async function nodeClientAgainstOurs(sopts: Partial<TlsServerOptions>, copts: tls.ConnectionOptions = {}) {
    const [ours, theirs] = duplexPair();
    const server = new TlsServer({ crypto, signer: signerFor(ec), ...sopts });
    const io = attach(server, ours);
    const client = tls.connect({
      socket: theirs,
      servername: 'stepwire.test',
      ca: ec.certPem,
      minVersion: 'TLSv1.3',
      ...copts,
    });
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    const sessions: Buffer[] = [];
    client.on('session', (t: Buffer) => sessions.push(t));
    let error: Error | undefined;
    client.on('error', (e) => {
      error = e;
    });
    await until(
      () => server.state === 'CONNECTED' || server.isClosed || error !== undefined,
      'node client to connect',
    );
    return { server, client, io, received, sessions, error: () => error };
  }

  it('OpenSSL completes a handshake with our server and exchanges data', async () => {
    const { server, client, io, received } = await nodeClientAgainstOurs(
      { alpnProtocols: ['http/1.1'] },
      { ALPNProtocols: ['h2', 'http/1.1'] },
    );
    expect(server.state).toBe('CONNECTED');
    await until(() => client.authorized !== undefined && client.alpnProtocol !== undefined, 'client secure');
    expect(client.authorized).toBe(true);
    expect(client.alpnProtocol).toBe('http/1.1');
    expect(client.getProtocol()).toBe('TLSv1.3');
    client.write('from openssl');
    await until(() => io.received().toString() === 'from openssl', 'data at our server');
    io.emit(server.send(utf8('from stepwire'), Date.now()));
    await until(() => Buffer.concat(received).toString() === 'from stepwire', 'data at node');
    const ctx = utf8('ctx');
    expect(client.exportKeyingMaterial(32, 'EXPERIMENTAL-x', Buffer.from(ctx)).toString('hex')).toBe(
      toHex(server.exportKeyingMaterial('EXPERIMENTAL-x', ctx, 32)),
    );
    client.destroy();
  });

  it('OpenSSL retries after our HelloRetryRequest and resumes with our ticket', async () => {
    const ticketKey = crypto.randomBytes(32);
    const first = await nodeClientAgainstOurs(
      { ticketKey, groups: [NamedGroup.secp256r1], signer: signerFor(rsa) },
      { ca: rsa.certPem },
    );
    expect(first.server.state).toBe('CONNECTED');
    expect(first.io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({
      group: 'secp256r1',
    });
    first.client.write('x');
    await until(() => first.sessions.length > 0, 'node to store our ticket');
    first.client.destroy();
    const second = await nodeClientAgainstOurs({ ticketKey }, { session: first.sessions[0] });
    expect(second.server.state).toBe('CONNECTED');
    expect(second.io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({ resumed: true });
    await until(() => second.client.isSessionReused(), 'node to report resumption');
    second.client.destroy();
  });
});
