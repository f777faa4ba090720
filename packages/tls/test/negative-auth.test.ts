/**
 * Authentication failures end the handshake with the alert RFC 8446 names, sent by the side
 * that detects them and seen by its peer: a wrong Finished (§4.4.4), a bad or unoffered
 * CertificateVerify (§4.4.3), a refused certificate (§4.4.2.4, RFC 5280 via our pki), a
 * missing client certificate (§4.4.2.4). Each case runs on the sans-I/O machines with a man in
 * the middle that re-encrypts with the logged keys, and on TlsSockets over our Duplex pair
 * (asynchronous delivery) and over node:stream duplexPair()s.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AlertDescription, type AlertDescriptionName } from '../src/codec/alert.ts';
import { ContentType, HandshakeType } from '../src/codec/common.ts';
import type { CryptoProvider } from '../src/crypto/provider.ts';
import {
  completed,
  type Edit,
  firstError,
  flipInMessage,
  has,
  runMachines,
  runSockets,
  type Scenario,
  type TestPki,
  testPki,
  tlsErrorOf,
} from './helpers/mitm.ts';
import { PROVIDERS } from './providers.ts';

const NOW = Date.now();
let pki: TestPki;
beforeAll(() => {
  pki = testPki(NOW);
});

interface Case {
  name: string;
  detector: 'client' | 'server';
  alert: AlertDescriptionName;
  scenario: (crypto: CryptoProvider) => Scenario;
}

function base(
  crypto: CryptoProvider,
  more: { client?: object; server?: object; edit?: Edit } = {},
): Scenario {
  return {
    crypto,
    now: NOW,
    client: { serverName: 'stepwire.test', verifier: pki.serverVerifier(), ...more.client },
    server: { signer: pki.signer(pki.leaf), ...more.server },
    edit: more.edit,
  };
}

/** The server asks for a client certificate (RFC 8446 §4.3.2) and the client has one. */
function withClientAuth(crypto: CryptoProvider, edit?: Edit, required = true): Scenario {
  return base(crypto, {
    client: { certificate: pki.signer(pki.client) },
    server: { clientAuth: { verifier: pki.clientVerifier(), required } },
    edit,
  });
}

const serverFlight =
  (type: number, offset: number, xor = 1): Edit =>
  (r) =>
    r.dir === 's2c' && r.epoch === 'handshake' && has(r, type)
      ? flipInMessage(r, type, offset, xor)
      : undefined;
const clientFlight =
  (type: number, offset: number, xor = 1): Edit =>
  (r) =>
    r.dir === 'c2s' && r.epoch === 'handshake' && has(r, type)
      ? flipInMessage(r, type, offset, xor)
      : undefined;

// CertificateVerify: 4-byte header, 2-byte scheme (offsets 4-5), 2-byte length, signature from offset 8.
const CV_SCHEME_LOW = 5;
const CV_SIGNATURE = 8;
// 0x0403 ecdsa_secp256r1_sha256 XOR 0x02 = 0x0401 rsa_pkcs1_sha256: not allowed in TLS 1.3 CertificateVerify (§4.4.3).
const TO_RSA_PKCS1 = 0x02;

const CASES: Case[] = [
  {
    // RFC 8446 §4.4.4: "Recipients of Finished messages MUST verify that the contents are correct and if incorrect MUST terminate the connection with a decrypt_error alert."
    name: 'a wrong server Finished verify_data (§4.4.4)',
    detector: 'client',
    alert: 'decrypt_error',
    scenario: (c) => base(c, { edit: serverFlight(HandshakeType.finished, -1) }),
  },
  {
    name: 'a wrong client Finished verify_data (§4.4.4)',
    detector: 'server',
    alert: 'decrypt_error',
    scenario: (c) => base(c, { edit: clientFlight(HandshakeType.finished, 4) }),
  },
  {
    // RFC 8446 §4.4.3: "If the verification fails, the receiver MUST terminate the handshake with a decrypt_error alert."
    name: 'a server CertificateVerify whose signature does not verify (last byte changed, §4.4.3)',
    detector: 'client',
    alert: 'decrypt_error',
    scenario: (c) => base(c, { edit: serverFlight(HandshakeType.certificate_verify, -1) }),
  },
  {
    // The ECDSA signature is DER (RFC 8446 §4.2.3); a broken SEQUENCE tag is still a signature that fails to verify.
    name: 'a server CertificateVerify whose signature is not even DER (first byte changed, §4.4.3)',
    detector: 'client',
    alert: 'decrypt_error',
    scenario: (c) => base(c, { edit: serverFlight(HandshakeType.certificate_verify, CV_SIGNATURE) }),
  },
  {
    // RFC 8446 §4.4.3: the algorithm must be one offered in signature_algorithms; RFC 8446 §4.2.3/§6.2: illegal_parameter.
    name: 'a server CertificateVerify with a scheme the client did not offer (rsa_pkcs1_sha256)',
    detector: 'client',
    alert: 'illegal_parameter',
    scenario: (c) =>
      base(c, { edit: serverFlight(HandshakeType.certificate_verify, CV_SCHEME_LOW, TO_RSA_PKCS1) }),
  },
  {
    name: 'a client CertificateVerify whose signature does not verify (§4.4.3)',
    detector: 'server',
    alert: 'decrypt_error',
    scenario: (c) => withClientAuth(c, clientFlight(HandshakeType.certificate_verify, -1)),
  },
  {
    name: 'a client CertificateVerify with a scheme the server did not request',
    detector: 'server',
    alert: 'illegal_parameter',
    scenario: (c) =>
      withClientAuth(c, clientFlight(HandshakeType.certificate_verify, CV_SCHEME_LOW, TO_RSA_PKCS1)),
  },
  {
    // RFC 8446 §4.4.2.4 leaves the alert to the validation failure; RFC 8446 §6.2: certificate_expired.
    name: 'an expired server certificate',
    detector: 'client',
    alert: 'certificate_expired',
    scenario: (c) => base(c, { server: { signer: pki.signer(pki.expired) } }),
  },
  {
    // pki's ALERT_FOR maps hostname_mismatch to bad_certificate.
    name: 'a server certificate for another name',
    detector: 'client',
    alert: 'bad_certificate',
    scenario: (c) => base(c, { client: { serverName: 'wrong.test' } }),
  },
  {
    name: 'a server certificate from an unknown CA',
    detector: 'client',
    alert: 'unknown_ca',
    scenario: (c) => base(c, { server: { signer: pki.signer(pki.stranger) } }),
  },
  {
    // RFC 8446 §4.4.2.4: "If the client does not send any certificates ..., the server MAY at its
    // discretion either continue the handshake without client authentication, or abort the
    // handshake with a certificate_required alert."
    name: 'no client certificate where one is required',
    detector: 'server',
    alert: 'certificate_required',
    scenario: (c) => base(c, { server: { clientAuth: { verifier: pki.clientVerifier(), required: true } } }),
  },
  {
    name: 'an expired client certificate',
    detector: 'server',
    alert: 'certificate_expired',
    scenario: (c) =>
      base(c, {
        client: { certificate: pki.signer(pki.expiredClient) },
        server: { clientAuth: { verifier: pki.clientVerifier(), required: true } },
      }),
  },
  {
    name: 'a client certificate from an unknown CA',
    detector: 'server',
    alert: 'unknown_ca',
    scenario: (c) =>
      base(c, {
        client: { certificate: pki.signer(pki.strangerClient) },
        server: { clientAuth: { verifier: pki.clientVerifier(), required: true } },
      }),
  },
];

const other = (side: 'client' | 'server') => (side === 'client' ? 'server' : 'client');

describe.each(PROVIDERS)('authentication failures ($name)', (crypto) => {
  it('control: the unmodified handshakes (with and without client auth) complete through the MITM', () => {
    for (const sc of [base(crypto), withClientAuth(crypto)]) {
      const r = runMachines(sc);
      expect(completed(r.events.client) && completed(r.events.server)).toBe(true);
      expect(firstError(r.events.client) ?? firstError(r.events.server)).toBeUndefined();
    }
  });

  describe.each(CASES)('$name', (c) => {
    it(`machines: the ${c.detector} sends ${c.alert}, the peer receives it, no exception`, () => {
      const r = runMachines(c.scenario(crypto));
      const det = r.events[c.detector];
      const peer = r.events[other(c.detector)];
      expect(firstError(det)).toMatchObject({ alertName: c.alert, sent: true });
      expect(completed(det)).toBe(false);
      expect(firstError(peer)).toMatchObject({ alertName: c.alert, sent: false });
      // The alert is on the wire from the detecting side, as a fatal alert (RFC 8446 §6).
      const dir = c.detector === 'client' ? 'c2s' : 's2c';
      const alerts = r.mitm.seen.filter((x) => x.dir === dir && x.type === ContentType.alert);
      expect(alerts.map((x) => [...x.content])).toEqual([[2, AlertDescription[c.alert]]]);
    });

    it.each(['wire', 'node'] as const)(
      `sockets (%s Duplex pair): TlsError ${c.alert} on both sides (sent by the ${c.detector})`,
      async (transport) => {
        const r = await runSockets(c.scenario(crypto), { transport });
        const det = r[c.detector];
        const peer = r[other(c.detector)];
        expect(tlsErrorOf(det)).toEqual({ alert: c.alert, sentByUs: true });
        expect(det.secure).toBe(false);
        expect(tlsErrorOf(peer)).toEqual({ alert: c.alert, sentByUs: false });
      },
    );
  });
});
