/**
 * `stepwire serve`'s HTTPS holds three certificates (ECDSA P-256, RSA 2048, Ed25519) from one
 * CA store and answers each client with the one its signature_algorithms can verify
 * (issue #12: a client offering only RSA-PSS used to get handshake_failure). Our client on
 * our TCP on the simulated network, one signature scheme at a time; and the CA store keeps
 * all three leaves across runs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Sim } from '@stepwire/sim';
import { connect, pki, SignatureScheme } from '@stepwire/tls';
import { describe, expect, it } from 'vitest';
import {
  ephemeralServeIdentity,
  httpsOverTcp,
  loadOrCreateServeIdentity,
} from '../packages/cli/src/services/https.ts';

describe('serve HTTPS picks the certificate by signature_algorithms', () => {
  it.each([
    [SignatureScheme.ecdsa_secp256r1_sha256, 'ec'],
    [SignatureScheme.rsa_pss_rsae_sha256, 'rsa'],
    [SignatureScheme.ed25519, 'ed25519'],
  ] as const)(
    'our client offering only scheme %d gets the %s leaf and verifies it',
    async (scheme, keyType) => {
      const sim = new Sim({ seed: 3 });
      const identity = ephemeralServeIdentity();
      const service = httpsOverTcp(sim.b.tcp, 443, { identity });
      try {
        const leaf = await sim.run(
          new Promise<pki.X509Certificate>((resolve, reject) => {
            const s = connect({
              socket: sim.a.tcp.connect({ host: sim.b.ipv4, port: 443 }),
              servername: 'stepwire.test',
              ca: identity.caPem!,
              sigalgs: [scheme],
            });
            s.on('secureConnect', () => {
              resolve(s.getPeerX509Certificates()[0]!);
              s.destroy();
            });
            s.on('error', reject);
          }),
        );
        expect(leaf.subjectPublicKeyInfo.publicKey.type).toBe(keyType);
      } finally {
        service.close();
        sim.close();
      }
    },
  );
});

describe('the serve CA store', () => {
  it('makes ECDSA, RSA and Ed25519 leaves once and keeps them', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepwire-ca-'));
    try {
      const first = loadOrCreateServeIdentity(dir);
      expect(first.made).toEqual({ ca: true, leaf: true });
      expect(fs.readdirSync(dir).sort()).toEqual(
        [
          'ca.key',
          'ca.pem',
          'leaf-ed25519.key',
          'leaf-ed25519.pem',
          'leaf-rsa.key',
          'leaf-rsa.pem',
          'leaf.key',
          'leaf.pem',
        ].sort(),
      );
      const types = [first.certPem, ...(first.more ?? []).map((m) => m.certPem)].map(
        (pem) => pki.decodeCertificatesPem(pem)[0]!.subjectPublicKeyInfo.publicKey.type,
      );
      expect(types).toEqual(['ec', 'rsa', 'ed25519']);
      const again = loadOrCreateServeIdentity(dir);
      expect(again.made).toEqual({ ca: false, leaf: false });
      expect(again.more?.map((m) => m.certPem)).toEqual(first.more?.map((m) => m.certPem));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
