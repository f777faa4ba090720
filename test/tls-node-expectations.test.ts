/**
 * A slice of Node's own test/parallel/test-tls-* expectations, rewritten (not copied) against
 * our node:tls-shaped API (issue #12), with node:tls itself as the oracle where both can run
 * the same case: the same error codes, the same `authorized`/`authorizationError`, the same
 * shapes. Kernel TCP on loopback (node:net, as node:tls uses), and once over our own TCP on the
 * simulated network through the `net` option.
 *
 *   test-tls-connect-simple, test-tls-server-close:   connect({ port }), listen(0), address(), close(cb)
 *   test-tls-client-verify, test-tls-server-verify:   UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT
 *   test-https-strict, test-tls-check-server-identity: ERR_TLS_CERT_ALTNAME_INVALID, checkServerIdentity
 *   test-tls-alpn-server-client, test-tls-alpn-callback: alpnProtocol false, ALPNCallback
 *   test-tls-peer-certificate:                         getPeerCertificate() fields, {} without one
 *   test-tls-sni-option, test-tls-sni-server-client:  SNICallback with createSecureContext
 *   test-tls-ticket:                                   getTicketKeys/setTicketKeys, 'session' bytes
 *   test-tls-ecdh:                                     ecdhCurve
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import tls from 'node:tls';
import { Sim } from '@stepwire/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConnectOptions,
  connect,
  createSecureContext,
  createServer,
  type SecureServer,
  type SecureSocket,
  type ServerOptions,
} from '../packages/tls/src/api.ts';
import { createCertificateAuthority, createLeafCertificate } from '../packages/tls/src/pki/index.ts';

const now = new Date();
const ca = createCertificateAuthority({ now, commonName: 'expectations CA' });
const leaf = createLeafCertificate(ca, {
  now,
  dnsNames: ['localhost', 'agent1'],
  ipAddresses: ['127.0.0.1'],
});
const other = createLeafCertificate(ca, { now, dnsNames: ['other.test'] });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepwire-node-exp-'));
let selfSigned: { cert: string; key: string };

beforeAll(() => {
  // A self-signed certificate as Node's fixtures have (OpenSSL makes it: an independent one).
  const key = path.join(dir, 'self.key');
  const cert = path.join(dir, 'self.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  selfSigned = { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8') };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const servers: (SecureServer | tls.Server)[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** Our server on 127.0.0.1:0 (listen(0) as Node's tests do), echoing or answering `reply`. */
async function ours(
  options: Partial<ServerOptions> = {},
  reply?: (s: SecureSocket) => void,
): Promise<SecureServer> {
  const server = createServer(
    { cert: leaf.certificatePem + ca.certificatePem, key: leaf.privateKeyPem, ...options } as ServerOptions,
    (s) => {
      s.on('error', () => {});
      if (reply) reply(s);
      else s.pipe(s);
    },
  );
  server.on('tlsClientError', () => {});
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
/** Resolves once `check` holds (polled on timers; the test's own timeout bounds it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}
const portOf = (s: SecureServer | tls.Server) => (s.address() as net.AddressInfo).port;

/** The first of 'secureConnect' or 'error' of our client. */
function outcome(
  s: SecureSocket | tls.TLSSocket,
): Promise<{ ok: true } | { ok: false; err: Error & { code?: string } }> {
  return new Promise((resolve) => {
    s.once('secureConnect', () => resolve({ ok: true }));
    s.once('error', (err: Error) => resolve({ ok: false, err }));
  });
}

describe('test-tls-connect-simple / test-tls-server-close', () => {
  it('connect({ port, host }) opens the TCP connection; address() gives the port; close(cb) waits for the open sessions', async () => {
    const server = await ours();
    const port = portOf(server);
    expect(port).toBeGreaterThan(0);
    expect(server.address()).toMatchObject({ address: '127.0.0.1', family: 'IPv4' });
    const a = connect({ port, host: '127.0.0.1', servername: 'localhost', ca: ca.certificatePem });
    const b = connect(port, '127.0.0.1', { servername: 'localhost', ca: ca.certificatePem });
    expect(await outcome(a)).toEqual({ ok: true });
    expect(await outcome(b)).toEqual({ ok: true });
    let closed = false;
    server.close(() => {
      closed = true;
    });
    // Open sessions keep the server from closing, as net.Server.close does; they still work.
    a.write('still here');
    expect(((await once(a, 'data')) as [Buffer])[0].toString()).toBe('still here');
    expect(closed).toBe(false);
    // A new connection is refused once close() was called.
    const refused = net.connect(port, '127.0.0.1');
    const [err] = (await once(refused, 'error').catch((e) => [e])) as [Error & { code?: string }];
    expect(err.code).toBe('ECONNREFUSED');
    a.end();
    b.end();
    await new Promise<void>((r) => server.once('close', () => r()));
    expect(closed).toBe(true);
  });
});

describe('test-tls-client-verify: certificate verdicts carry node:tls codes (node:tls as oracle)', () => {
  const cases: [string, () => Partial<ServerOptions>, ConnectOptions, string][] = [
    [
      'a lone leaf whose CA the client lacks',
      () => ({ cert: leaf.certificatePem }),
      { servername: 'localhost', ca: other.certificatePem },
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    ],
    [
      'a leaf and an untrusted root',
      () => ({}),
      { servername: 'localhost', ca: other.certificatePem },
      'SELF_SIGNED_CERT_IN_CHAIN',
    ],
    [
      'a self-signed leaf',
      () => ({ cert: selfSigned.cert, key: selfSigned.key }),
      { servername: 'localhost', ca: ca.certificatePem },
      'DEPTH_ZERO_SELF_SIGNED_CERT',
    ],
    [
      'a name the certificate lacks',
      () => ({}),
      { servername: 'wrong.test', ca: ca.certificatePem },
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
  ];
  it.each(cases)(
    '%s: error code, and with rejectUnauthorized false authorizationError',
    async (_n, server, opts, code) => {
      const srv = await ours(server());
      const port = portOf(srv);
      const ca = typeof opts.ca === 'string' ? opts.ca : undefined;
      // node:tls says it first.
      const n = tls.connect({ port, host: '127.0.0.1', servername: opts.servername, ...(ca ? { ca } : {}) });
      const nr = await outcome(n);
      n.destroy();
      expect(nr.ok ? 'connected' : nr.err.code).toBe(code);
      // Ours says the same.
      const c = connect({ port, host: '127.0.0.1', ...opts });
      const r = await outcome(c);
      c.destroy();
      expect(r.ok ? 'connected' : r.err.code).toBe(code);
      if (!r.ok) expect(r.err).toMatchObject({ sentByUs: true, alert: expect.any(String) });
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return; // Node reports the name in its own error only.
      const lax = connect({ port, host: '127.0.0.1', ...opts, rejectUnauthorized: false });
      expect(await outcome(lax)).toEqual({ ok: true });
      expect(lax.authorized).toBe(false);
      expect(lax.authorizationError).toBe(code);
      lax.destroy();
    },
  );

  it('checkServerIdentity: returning undefined accepts a name mismatch; returning an Error refuses with its code', async () => {
    const srv = await ours();
    const port = portOf(srv);
    const seen: string[] = [];
    const ok = connect({
      port,
      host: '127.0.0.1',
      servername: 'wrong.test',
      ca: ca.certificatePem,
      checkServerIdentity: (host, cert) => {
        seen.push(`${host} ${cert.subjectaltname}`);
        return undefined;
      },
    });
    expect(await outcome(ok)).toEqual({ ok: true });
    expect(ok.authorized).toBe(true);
    ok.destroy();
    expect(seen).toEqual(['wrong.test DNS:localhost, DNS:agent1, IP Address:127.0.0.1']);
    const no = connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      checkServerIdentity: () => Object.assign(new Error('not this one'), { code: 'E_MINE' }),
    });
    const r = await outcome(no);
    expect(r.ok ? 'connected' : r.err.code).toBe('E_MINE');
  });
});

describe('test-tls-alpn-server-client / test-tls-alpn-callback', () => {
  it('alpnProtocol is false on both sides when none is negotiated, as node:tls says', async () => {
    let serverSide: SecureSocket | undefined;
    const sides: SecureSocket[] = [];
    const srv = await ours({}, (s) => {
      serverSide = s;
      sides.push(s);
      s.end();
    });
    const c = connect({
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      ALPNProtocols: ['a'],
    });
    await outcome(c);
    expect(c.alpnProtocol).toBe(false);
    const n = tls.connect({
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
    });
    await outcome(n);
    expect(n.alpnProtocol).toBe(false);
    await until(() => sides.length === 2);
    expect(serverSide?.alpnProtocol).toBe(false);
    c.destroy();
    n.destroy();
  });

  it('ALPNCallback picks the protocol; returning undefined refuses with no_application_protocol', async () => {
    const srv = await ours({ ALPNCallback: ({ protocols }) => (protocols.includes('b') ? 'b' : undefined) });
    const port = portOf(srv);
    const c = connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      ALPNProtocols: ['a', 'b'],
    });
    expect(await outcome(c)).toEqual({ ok: true });
    expect(c.alpnProtocol).toBe('b');
    c.destroy();
    const n = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      ALPNProtocols: ['a'],
    });
    const nr = await outcome(n);
    const d = connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      ALPNProtocols: ['a'],
    });
    const r = await outcome(d);
    expect(nr.ok ? 'connected' : nr.err.code).toBe('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    expect(r.ok ? 'connected' : r.err.code).toBe('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    expect(r.ok ? undefined : r.err).toMatchObject({ alert: 'no_application_protocol', sentByUs: false });
  });
});

describe('test-tls-peer-certificate', () => {
  it('the detailed form with one, {} without one', async () => {
    let serverSide: SecureSocket | undefined;
    const sides: SecureSocket[] = [];
    const srv = await ours({}, (s) => {
      serverSide = s;
      sides.push(s);
      s.end();
    });
    const c = connect({
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
    });
    await outcome(c);
    const n = tls.connect({
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
    });
    await outcome(n);
    const ourView = c.getPeerCertificate();
    const nodeView = n.getPeerCertificate();
    for (const k of [
      'subject',
      'issuer',
      'valid_from',
      'valid_to',
      'fingerprint',
      'fingerprint256',
      'fingerprint512',
      'serialNumber',
      'subjectaltname',
      'bits',
    ] as const)
      expect(ourView[k], k).toEqual(nodeView[k as keyof typeof nodeView]);
    expect(ourView.raw.equals(nodeView.raw)).toBe(true);
    await until(() => sides.length === 2);
    expect(serverSide?.getPeerCertificate()).toEqual({});
    c.destroy();
    n.destroy();
  });
});

describe('test-tls-sni-server-client', () => {
  it('SNICallback answers per name with createSecureContext; the client gets that certificate; an error refuses', async () => {
    const contexts: Record<string, ReturnType<typeof createSecureContext>> = {
      'other.test': createSecureContext({ cert: other.certificatePem, key: other.privateKeyPem }),
    };
    const names: string[] = [];
    const srv = await ours({
      SNICallback: (name, cb) => {
        names.push(name);
        // Asynchronously, as a real lookup would be.
        setImmediate(() =>
          name === 'refused.test' ? cb(new Error('no such name')) : cb(null, contexts[name]),
        );
      },
    });
    const port = portOf(srv);
    const viaSni = connect({ port, host: '127.0.0.1', servername: 'other.test', ca: ca.certificatePem });
    expect(await outcome(viaSni)).toEqual({ ok: true });
    expect(viaSni.getPeerCertificate().subjectaltname).toBe('DNS:other.test');
    viaSni.destroy();
    const byDefault = connect({ port, host: '127.0.0.1', servername: 'localhost', ca: ca.certificatePem });
    expect(await outcome(byDefault)).toEqual({ ok: true });
    expect(byDefault.getPeerCertificate().subject.CN).toBe('localhost');
    byDefault.destroy();
    const refused = connect({ port, host: '127.0.0.1', servername: 'refused.test', ca: ca.certificatePem });
    const r = await outcome(refused);
    expect(r.ok).toBe(false);
    expect(names).toEqual(['other.test', 'localhost', 'refused.test']);
  });
});

describe('test-tls-ticket', () => {
  it("two servers with the same ticketKeys resume each other's sessions; 'session' is bytes; setTicketKeys cuts old tickets", async () => {
    const keys = Buffer.alloc(48, 7);
    const one = await ours({ ticketKeys: keys }, (s) => s.end());
    const two = await ours({ ticketKeys: keys }, (s) => s.end());
    expect(one.getTicketKeys().equals(keys)).toBe(true);
    const first = connect({
      port: portOf(one),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
    });
    const [session] = (await once(first, 'session')) as [Buffer];
    expect(Buffer.isBuffer(session)).toBe(true);
    first.destroy();
    const second = connect({
      port: portOf(two),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      session,
    });
    await outcome(second);
    expect(second.isSessionReused()).toBe(true);
    second.destroy();
    two.setTicketKeys(Buffer.alloc(48, 9));
    expect(two.getTicketKeys().equals(Buffer.alloc(48, 9))).toBe(true);
    const third = connect({
      port: portOf(two),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      session,
    });
    await outcome(third);
    expect(third.isSessionReused()).toBe(false);
    third.destroy();
  });
});

describe('test-tls-ecdh and alerts by name', () => {
  it.each([
    ['X25519', 'x25519'],
    ['P-256', 'secp256r1'],
  ])('ecdhCurve %s', async (curve, group) => {
    const srv = await ours({ ecdhCurve: curve });
    const c = connect({
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      ecdhCurve: 'X25519:P-256',
    });
    await outcome(c);
    expect(c.handshake?.group).toBe(group);
    c.destroy();
  });

  it('no cipher suite in common: both clients read handshake_failure as ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', async () => {
    const srv = await ours({ cipherSuites: 'TLS_AES_256_GCM_SHA384' });
    const opts = {
      port: portOf(srv),
      host: '127.0.0.1',
      servername: 'localhost',
      ca: ca.certificatePem,
      // node:tls takes TLS 1.3 suites in `ciphers`; so do we.
      ciphers: 'TLS_AES_128_GCM_SHA256',
    };
    const n = tls.connect(opts);
    const c = connect(opts);
    const [nr, r] = await Promise.all([outcome(n), outcome(c)]);
    expect(nr.ok ? 'connected' : nr.err.code).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    expect(r.ok ? 'connected' : r.err.code).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
  });

  it('a server that closes the TCP connection during the handshake: ECONNRESET, as node:tls', async () => {
    const rude = net.createServer((s) => s.once('data', () => s.destroy()));
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    const port = (rude.address() as net.AddressInfo).port;
    const n = tls.connect({ port, host: '127.0.0.1', servername: 'localhost' });
    const c = connect({ port, host: '127.0.0.1', servername: 'localhost' });
    const [nr, r] = await Promise.all([outcome(n), outcome(c)]);
    rude.close();
    expect(nr.ok ? 'connected' : nr.err.code).toBe('ECONNRESET');
    expect(r.ok ? 'connected' : r.err.code).toBe('ECONNRESET');
  });
});

describe('the same API on our TCP (the `net` option)', () => {
  it('createServer({ net }).listen(443) and connect({ host, port, net }) on the simulated network', async () => {
    const sim = new Sim({ seed: 5 });
    const server = createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem, net: sim.b.tcp }, (s) =>
      s.pipe(s),
    );
    server.listen(443);
    try {
      const c = connect({
        host: sim.b.ipv4,
        port: 443,
        servername: 'localhost',
        ca: ca.certificatePem,
        net: sim.a.tcp,
      });
      const echoed = sim.run(
        new Promise<string>((resolve, reject) => {
          c.once('secureConnect', () => c.write('over our TCP'));
          c.once('data', (d: Buffer) => resolve(d.toString()));
          c.once('error', reject);
        }),
      );
      expect(await echoed).toBe('over our TCP');
      expect(c.remotePort).toBe(443);
      c.destroy();
    } finally {
      server.close(true);
      sim.close();
    }
  });
});
