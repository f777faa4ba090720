/**
 * Post-handshake client authentication (RFC 8446 §4.6.2) against OpenSSL, over kernel TCP on
 * loopback. OpenSSL is the independent judge of the transcript: its Finished (or ours) over
 * "handshake context + CertificateRequest + Certificate + CertificateVerify" under
 * client_application_traffic_secret_N (§4.4) verifies only if both sides built the same.
 *
 * - our server asks `openssl s_client -enable_pha` for its certificate after the handshake;
 * - `openssl s_server` (interactive command 'c': SSL_verify_client_post_handshake) asks our
 *   client, which offered post_handshake_auth;
 * - and a second judge: our server asks `gnutls-cli --post-handshake-auth`.
 */
import net from 'node:net';
import {
  type CertificateVerifier,
  connect,
  nobleCrypto,
  nodeCrypto,
  type TlsEvent,
  TlsServer,
} from '@stepwire/tls';
import { afterAll, describe, expect, it } from 'vitest';
import { pkiSigner, pkiVerifier, tcpConnect } from './support/tls-ours.ts';
import {
  startGnutlsClient,
  startOpensslClient,
  startOpensslServer,
  stopAllPeers,
  tlsFixtures,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];
const PROVIDERS = [
  ['noble', nobleCrypto],
  ['node', nodeCrypto],
] as const;

/**
 * Our sans-I/O server on one kernel TCP connection, driven by hand so that the test can call
 * requestClientCertificate and see every event.
 */
async function ourRawServer(
  crypto: typeof nobleCrypto,
  verifier: CertificateVerifier,
): Promise<{
  port: number;
  events: TlsEvent[];
  machine: () => TlsServer | undefined;
  request: () => void;
  send: (text: string) => void;
  waitFor: (type: TlsEvent['type'], timeoutMs?: number) => Promise<TlsEvent>;
  close: () => void;
}> {
  const events: TlsEvent[] = [];
  const waiters: (() => void)[] = [];
  let machine: TlsServer | undefined;
  let sock: net.Socket | undefined;
  const push = (out: { data: Uint8Array[]; events: TlsEvent[] }) => {
    for (const d of out.data) sock?.write(d);
    events.push(...out.events);
    for (const w of waiters.splice(0)) w();
  };
  const server = net.createServer((s) => {
    if (machine) {
      s.destroy();
      return;
    }
    sock = s;
    machine = new TlsServer({
      crypto,
      signer: pkiSigner(p256.leaf),
      postHandshakeAuth: { verifier, required: true },
    });
    const m = machine;
    s.on('data', (b: Buffer) => push(m.receive(new Uint8Array(b), Date.now())));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const waitFor = (type: TlsEvent['type'], timeoutMs = 8000): Promise<TlsEvent> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} event; got ${events.map((e) => e.type)}`)),
        timeoutMs,
      );
      const check = () => {
        const e = events.find((x) => x.type === type);
        if (e) {
          clearTimeout(timer);
          resolve(e);
        } else waiters.push(check);
      };
      check();
    });
  return {
    port: (server.address() as net.AddressInfo).port,
    events,
    machine: () => machine,
    request: () => {
      if (!machine) throw new Error('no connection');
      push(machine.requestClientCertificate(Date.now()));
    },
    send: (text) => {
      if (!machine) throw new Error('no connection');
      push(machine.send(new TextEncoder().encode(text), Date.now()));
    },
    waitFor,
    close: () => {
      sock?.destroy();
      server.close();
    },
  };
}

describe('post-handshake client authentication with OpenSSL (RFC 8446 §4.6.2)', () => {
  for (const [name, crypto] of PROVIDERS) {
    it(`our server asks openssl s_client -enable_pha after the handshake and verifies its chain (${name})`, async () => {
      const srv = await ourRawServer(crypto, pkiVerifier(fx.client.ca, 'clientAuth'));
      const client = startOpensslClient({
        port: srv.port,
        caFile: p256.ca.certFile,
        certFile: fx.client.leaf.certFile,
        keyFile: fx.client.leaf.keyFile,
        extraArgs: ['-enable_pha'],
        keepInputOpen: true,
        timeoutMs: 15_000,
      });
      try {
        await srv.waitFor('handshake-complete');
        expect(srv.machine()?.postHandshakeAuthOffered).toBe(true);
        srv.request();
        const got = await srv.waitFor('client-certificate');
        if (got.type !== 'client-certificate') throw new Error('unreachable');
        expect(Buffer.from(got.peerCertificates[0]!).toString('base64')).toBe(
          fx.client.leaf.certPem.replace(/-----[A-Z ]+-----|\s/g, ''),
        );
        expect(srv.events.filter((e) => e.type === 'error')).toEqual([]);
        // The connection goes on: s_client prints what we send after the exchange.
        srv.send('after-pha\n');
        await client.process.waitFor(/after-pha/, { timeoutMs: 8000 });
        // -msg shows OpenSSL's side: our CertificateRequest in, its Certificate, CertificateVerify and Finished out.
        const out = client.process.output();
        expect(out).toMatch(/<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], CertificateRequest/);
        expect(out).toMatch(/>>> TLS 1\.3, Handshake \[length [0-9a-f]+\], CertificateVerify/);
      } finally {
        client.process.endInput();
        await client.result;
        srv.close();
      }
    });
  }

  it('a client certificate from an unknown CA after the handshake gets our alert (unknown_ca)', async () => {
    const srv = await ourRawServer(nodeCrypto, pkiVerifier(fx.unrelatedCa, 'clientAuth'));
    const client = startOpensslClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      extraArgs: ['-enable_pha'],
      keepInputOpen: true,
      timeoutMs: 15_000,
    });
    try {
      await srv.waitFor('handshake-complete');
      srv.request();
      const err = await srv.waitFor('error');
      expect(err).toMatchObject({ alertName: 'unknown_ca', sent: true });
      await client.process.waitFor(/SSL3_READ_BYTES|alert unknown ca|unknown ca/i, { timeoutMs: 8000 });
    } finally {
      client.process.endInput();
      await client.result;
      srv.close();
    }
  });

  for (const [name, crypto] of PROVIDERS) {
    it(`openssl s_server asks our client (postHandshakeAuth) after the handshake and verifies it (${name})`, async () => {
      const srv = await startOpensslServer({
        certFile: p256.leaf.certFile,
        keyFile: p256.leaf.keyFile,
        mode: 'interactive',
        extraArgs: ['-CAfile', fx.client.ca.certFile, '-verify_return_error'],
      });
      const tcp = await tcpConnect(srv.port);
      const socket = connect(tcp, {
        crypto,
        serverName: 'stepwire.test',
        verifier: pkiVerifier(p256.ca),
        certificate: pkiSigner(fx.client.leaf),
        postHandshakeAuth: true,
      });
      const errors: Error[] = [];
      socket.on('error', (e) => errors.push(e));
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('secure', () => resolve());
          socket.once('error', reject);
        });
        const mark = srv.process.mark();
        // s_server's interactive 'c': SSL_verify_client_post_handshake, a CertificateRequest now.
        srv.process.write('c\n');
        // Our answer as OpenSSL reads it: Certificate, CertificateVerify and Finished after its request.
        await srv.process.waitFor(
          /CertificateRequest[\s\S]*<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], Finished/,
          { since: mark, timeoutMs: 8000 },
        );
        // Then data both ways: the connection survived, and OpenSSL accepted our Finished.
        socket.write('hello after pha\n');
        await srv.process.waitFor(/hello after pha/, { since: mark, timeoutMs: 8000 });
        const all = srv.process.text(mark);
        expect(all).toMatch(/>>> TLS 1\.3, Handshake \[length [0-9a-f]+\], CertificateRequest/);
        // What OpenSSL read after its request.
        const text = all.slice(all.indexOf('], CertificateRequest'));
        expect(text).toMatch(/<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], Certificate\b/);
        expect(text).toMatch(/<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], CertificateVerify/);
        expect(text).not.toMatch(/alert|error/i);
        expect(errors).toEqual([]);
      } finally {
        socket.destroy();
        await srv.stop();
      }
    });
  }

  it('openssl s_server refuses our post-handshake certificate from a CA it does not trust, and our client reports its alert', async () => {
    const srv = await startOpensslServer({
      certFile: p256.leaf.certFile,
      keyFile: p256.leaf.keyFile,
      mode: 'interactive',
      extraArgs: ['-CAfile', fx.client.ca.certFile, '-verify_return_error'],
    });
    const tcp = await tcpConnect(srv.port);
    const socket = connect(tcp, {
      crypto: nodeCrypto,
      serverName: 'stepwire.test',
      verifier: pkiVerifier(p256.ca),
      // Signed by the server CA, which s_server does not trust for clients.
      certificate: pkiSigner(fx.wrongName),
      postHandshakeAuth: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secure', () => resolve());
        socket.once('error', reject);
      });
      const failed = new Promise<Error>((resolve) => socket.once('error', resolve));
      srv.process.write('c\n');
      const err = (await failed) as Error & { alert?: string; sentByUs?: boolean };
      expect(err.sentByUs).toBe(false);
      expect(err.alert).toMatch(/unknown_ca|bad_certificate|certificate_unknown/);
    } finally {
      socket.destroy();
      await srv.stop();
    }
  });

  it('our server asks gnutls-cli --post-handshake-auth after the handshake and verifies its chain', async () => {
    const srv = await ourRawServer(nodeCrypto, pkiVerifier(fx.client.ca, 'clientAuth'));
    const client = startGnutlsClient({
      port: srv.port,
      caFile: p256.ca.certFile,
      certFile: fx.client.leaf.certFile,
      keyFile: fx.client.leaf.keyFile,
      extraArgs: ['--post-handshake-auth'],
      keepInputOpen: true,
      timeoutMs: 15_000,
    });
    try {
      await srv.waitFor('handshake-complete');
      expect(srv.machine()?.postHandshakeAuthOffered).toBe(true);
      srv.request();
      const got = await srv.waitFor('client-certificate');
      if (got.type !== 'client-certificate') throw new Error('unreachable');
      expect(Buffer.from(got.peerCertificates[0]!).toString('base64')).toBe(
        fx.client.leaf.certPem.replace(/-----[A-Z ]+-----|\s/g, ''),
      );
      srv.send('after-pha\n');
      await client.process.waitFor(/after-pha/, { timeoutMs: 8000 });
      expect(srv.events.filter((e) => e.type === 'error')).toEqual([]);
    } finally {
      client.process.endInput();
      await client.result;
      srv.close();
    }
  });
});
