/**
 * X25519MLKEM768 offered by default against peers that lack it (OpenSSL 3.0's s_server,
 * gnutls-serv): because our ClientHello also carries an X25519 share, as browsers' do, they
 * answer in one round trip with X25519 — no HelloRetryRequest (issue #12). No peer with the
 * hybrid group is installed here (OpenSSL 3.5 would be one); our client against our server
 * negotiating it is in packages/tls/test/kex-mlkem.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ourConnect, readUntil } from './support/tls-ours.ts';
import { startGnutlsServer, startOpensslServer, stopAllPeers, tlsFixtures } from './support/tls-peers.ts';

afterAll(stopAllPeers);
const fx = tlsFixtures();
const p256 = fx.server['P-256'];

describe('our default ClientHello (X25519MLKEM768 first, X25519 beside it) against peers without the hybrid', () => {
  it('openssl s_server: X25519 in one handshake, one ClientHello', async () => {
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev' });
    try {
      const c = await ourConnect({ port: srv.port, ca: p256.ca });
      c.socket.write('pq\n');
      await readUntil(c.socket, /qp/);
      expect(c.handshake.group).toBe('x25519');
      expect(c.handshake.helloRetry).toBe(false);
      // The ClientHello offered the hybrid first, with a 1216-byte share (draft-ietf-tls-ecdhe-mlkem §3).
      c.socket.end();
      expect(srv.facts().helloRetry ?? false).toBe(false);
      expect(srv.facts().clientHellos).toBe(1);
    } finally {
      await srv.stop();
    }
  });

  it('gnutls-serv: X25519 in one handshake', async () => {
    const srv = await startGnutlsServer({ ...p256.leaf });
    try {
      const c = await ourConnect({ port: srv.port, ca: p256.ca });
      expect(c.handshake.group).toBe('x25519');
      expect(c.handshake.helloRetry).toBe(false);
      c.socket.destroy();
    } finally {
      await srv.stop();
    }
  });
});

describe('P-384 (secp384r1) against openssl s_server -groups P-384', () => {
  it.each(['noble', 'node'] as const)('with the %s provider', async (name) => {
    const { nobleCrypto, nodeCrypto, NamedGroup } = await import('@stepwire/tls');
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', groups: 'P-384' });
    try {
      const c = await ourConnect({
        port: srv.port,
        ca: p256.ca,
        groups: [NamedGroup.X25519MLKEM768, NamedGroup.x25519, NamedGroup.secp384r1],
        crypto: name === 'noble' ? nobleCrypto : nodeCrypto,
      });
      c.socket.write('p384\n');
      await readUntil(c.socket, /483p/);
      expect(c.handshake.group).toBe('P-384');
      // No share for P-384 in the first ClientHello: s_server asks for one.
      expect(c.handshake.helloRetry).toBe(true);
      c.socket.end();
    } finally {
      await srv.stop();
    }
  });
});

describe('X448 and P-521 against openssl s_server', () => {
  it.each([
    ['X448', 'x448', 'X448'],
    ['P-521', 'secp521r1', 'P-521'],
  ] as const)('-groups %s', async (opensslName, _ours, reported) => {
    const { nobleCrypto, nodeCrypto, NamedGroup } = await import('@stepwire/tls');
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'rev', groups: opensslName });
    try {
      for (const crypto of [nobleCrypto, nodeCrypto]) {
        const c = await ourConnect({
          port: srv.port,
          ca: p256.ca,
          groups: [NamedGroup.x25519, opensslName === 'X448' ? NamedGroup.x448 : NamedGroup.secp521r1],
          crypto,
        });
        c.socket.write('abc\n');
        await readUntil(c.socket, /cba/);
        expect(c.handshake.group?.toLowerCase()).toBe(reported.toLowerCase());
        c.socket.end();
      }
    } finally {
      await srv.stop();
    }
  });
});
