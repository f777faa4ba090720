/**
 * psk_ke (RFC 8446 §4.2.9) against OpenSSL: our client, offering only psk_ke with an external
 * PSK, to `openssl s_server -psk ... -allow_no_dhe_kex`; `openssl s_client -allow_no_dhe_kex`
 * to our server with allowPskKe. (OpenSSL's client offers psk_dhe_ke too, so there our server
 * picks the forward-secret mode, as it should.)
 */
import net from 'node:net';
import { nobleCrypto, PskKeyExchangeMode, TlsClient, TlsServer, TlsSocket } from '@stepwire/tls';
import { afterAll, describe, expect, it } from 'vitest';
import { readUntil } from './support/tls-ours.ts';
import { runOpensslClient, startOpensslServer, stopAllPeers, tlsFixtures } from './support/tls-peers.ts';
import { pkiSigner, pkiVerifier } from './support/tls-pki.ts';

afterAll(stopAllPeers);
const fx = tlsFixtures();
const PSK = { identity: 'stepwire-psk-ke', keyHex: '0f'.repeat(32) };
const key = new Uint8Array(Buffer.from(PSK.keyHex, 'hex'));
const identity = new TextEncoder().encode(PSK.identity);

describe('psk_ke with OpenSSL', () => {
  it('our client (psk_ke only) to s_server -allow_no_dhe_kex: no (EC)DHE, data flows', async () => {
    const srv = await startOpensslServer({ psk: PSK, mode: 'rev', extraArgs: ['-allow_no_dhe_kex'] });
    try {
      const tcp = net.connect(srv.port, '127.0.0.1');
      const s = new TlsSocket(
        tcp,
        new TlsClient({
          crypto: nobleCrypto,
          serverName: 'stepwire.test',
          verifier: pkiVerifier(fx.server['P-256'].ca),
          externalPsk: { identity, key },
          pskKeyExchangeModes: [PskKeyExchangeMode.psk_ke],
        }),
      ).startHandshake();
      await new Promise((resolve, reject) => {
        s.once('secure', resolve);
        s.once('error', reject);
      });
      expect(s.handshake).toMatchObject({ psk: 'external', peerCertificates: [] });
      expect(s.handshake?.group).toBeUndefined();
      s.write('psk ke\n');
      await readUntil(s, /ek ksp/);
      s.destroy();
    } finally {
      await srv.stop();
    }
  });

  it('s_client -allow_no_dhe_kex to our server with allowPskKe: the PSK authenticates', async () => {
    const server = net.createServer((tcp) => {
      const t = new TlsSocket(
        tcp,
        new TlsServer({
          crypto: nobleCrypto,
          signer: pkiSigner(fx.server['P-256'].leaf),
          allowPskKe: true,
          externalPsk: (id) => (Buffer.from(id).equals(Buffer.from(identity)) ? { key } : undefined),
        }),
      );
      t.on('error', () => {});
      t.on('data', (d: Buffer) => t.write(d));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await runOpensslClient({
        port: (server.address() as net.AddressInfo).port,
        psk: PSK,
        extraArgs: ['-allow_no_dhe_kex'],
        input: 'hello\n',
        until: /hello/,
      });
      expect(r.stdout).toMatch(/hello/);
      expect(r.facts.alertsReceived).toEqual([]);
      expect(r.facts.peerCertificate ?? false).toBe(false);
    } finally {
      server.close();
    }
  });
});
