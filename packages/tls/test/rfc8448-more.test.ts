/**
 * RFC 8448 §6 (client authentication) and §7 (compatibility mode), byte for byte: secrets,
 * keys, Finished values, every record sealed and opened, every message re-encoded, and
 * both sides' CertificateVerify signatures checked over our certificateVerifyInput.
 */
import { constants, verify, X509Certificate } from 'node:crypto';
import { concatBytes, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { certificateVerifyInput } from '../src/auth.ts';
import { ContentType } from '../src/codec/common.ts';
import { decodeHandshake, encodeHandshake } from '../src/codec/handshake.ts';
import { decodeTLSPlaintext, encodeTLSPlaintext, RecordReader } from '../src/codec/record.ts';
import {
  CIPHER_SUITES,
  finishedKey,
  finishedVerifyData,
  KeySchedule,
  Transcript,
  trafficKeys,
} from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { PROVIDERS } from './providers.ts';
import * as clientauth from './vectors/rfc8448/clientauth.ts';
import * as compat from './vectors/rfc8448/compat.ts';
import * as simple from './vectors/rfc8448/simple.ts';

const suite = CIPHER_SUITES.get(0x1301)!;
const hex = toHex;

type Trace = typeof compat & { serverFlightRecords?: Uint8Array; clientFlightRecords?: Uint8Array };

function asTrace(t: typeof clientauth | typeof compat): Trace {
  if ('serverHandshakeRecord' in t) {
    return {
      ...t,
      serverFlightRecords: t.serverHandshakeRecord,
      clientFlightRecords: t.clientHandshakeRecord,
    } as unknown as Trace;
  }
  return t as Trace;
}

/** Verify a CertificateVerify with the key in `certMessage` (node:crypto, independent of our code). */
function signatureVerifies(certMessage: Uint8Array, cvMessage: Uint8Array, content: Uint8Array): boolean {
  const cert = decodeHandshake(certMessage);
  const cv = decodeHandshake(cvMessage);
  if (cert.msgType !== 'certificate' || cv.msgType !== 'certificate_verify')
    throw new Error('not a Certificate/CertificateVerify');
  const key = new X509Certificate(Buffer.from(cert.certificateList[0]!.certData)).publicKey;
  if (cv.algorithm === 0x0804) {
    return verify(
      'sha256',
      content,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
      cv.signature,
    );
  }
  if (cv.algorithm === 0x0403) return verify('sha256', content, key, cv.signature);
  throw new Error(`scheme ${cv.algorithm}`);
}

/** Split a write into records; a leading change_cipher_spec must be exactly 14 03 03 00 01 01 and is set aside. */
function records(bytes: Uint8Array): { ccs: number; protectedRecords: Uint8Array[] } {
  const all = new RecordReader().push(bytes);
  const ccs = all.filter((r) => r[0] === ContentType.change_cipher_spec);
  for (const c of ccs) expect(hex(c)).toBe('140303000101');
  return { ccs: ccs.length, protectedRecords: all.filter((r) => r[0] !== ContentType.change_cipher_spec) };
}

describe.each(PROVIDERS)('RFC 8448 §6 and §7 ($name)', (c) => {
  describe.each([
    ['§6 client authentication', asTrace(clientauth), 0],
    ['§7 compatibility mode', asTrace(compat), 1],
  ] as const)('%s', (_name, t, expectCcs) => {
    const ch = t.clientHelloRecord.subarray(5);
    const sh = t.serverHelloRecord.subarray(5);

    it('re-encodes every message and record', () => {
      for (const rec of [t.clientHelloRecord, t.serverHelloRecord]) {
        expect(hex(encodeTLSPlaintext(decodeTLSPlaintext(rec)))).toBe(hex(rec));
      }
      for (const m of [ch, sh, ...t.serverFlight, ...t.clientFlight])
        expect(hex(encodeHandshake(decodeHandshake(m)))).toBe(hex(m));
      const hello = decodeHandshake(ch);
      const echo = decodeHandshake(sh);
      // RFC 8446 §D.4: in compatibility mode the client sends a 32-byte session id and the server echoes it.
      expect(hello.msgType === 'client_hello' && hello.legacySessionId.length).toBe(expectCcs ? 32 : 0);
      expect(echo.msgType === 'server_hello' && hex(echo.legacySessionIdEcho)).toBe(
        hello.msgType === 'client_hello' ? hex(hello.legacySessionId) : '',
      );
    });

    it('derives every secret and key, checks both Finished and the signatures', () => {
      expect(hex(c.generateKeyPair('x25519', t.clientPrivate).publicKey)).toBe(hex(t.clientPublic));
      expect(hex(c.sharedSecret('x25519', t.serverPrivate, t.clientPublic))).toBe(hex(t.ecdheSecret));
      const ks = new KeySchedule(c, 'sha256');
      ks.deriveEarlySecret();
      expect(hex(ks.deriveHandshakeSecret(t.ecdheSecret))).toBe(hex(t.handshakeSecret));
      const tr = new Transcript();
      tr.add(ch);
      tr.add(sh);
      expect(hex(tr.hash(c, 'sha256'))).toBe(hex(t.helloHash));
      const cHs = ks.clientHandshakeTrafficSecret(t.helloHash);
      const sHs = ks.serverHandshakeTrafficSecret(t.helloHash);
      expect(hex(cHs)).toBe(hex(t.clientHandshakeTrafficSecret));
      expect(hex(sHs)).toBe(hex(t.serverHandshakeTrafficSecret));
      expect(hex(ks.deriveMasterSecret())).toBe(hex(t.masterSecret));
      expect([hex(trafficKeys(c, suite, sHs).key), hex(trafficKeys(c, suite, sHs).iv)]).toEqual([
        hex(t.serverHandshakeKey),
        hex(t.serverHandshakeIv),
      ]);
      expect([hex(trafficKeys(c, suite, cHs).key), hex(trafficKeys(c, suite, cHs).iv)]).toEqual([
        hex(t.clientHandshakeKey),
        hex(t.clientHandshakeIv),
      ]);

      // The server's flight: the CertificateVerify signs the transcript through Certificate (RFC 8446 §4.4.3).
      const flight = t.serverFlight;
      const certAt = flight.findIndex((m) => m[0] === 11);
      for (const m of flight.slice(0, certAt + 1)) tr.add(m);
      expect(
        signatureVerifies(
          flight[certAt]!,
          flight[certAt + 1]!,
          certificateVerifyInput('server', tr.hash(c, 'sha256')),
        ),
      ).toBe(true);
      expect(
        signatureVerifies(
          flight[certAt]!,
          flight[certAt + 1]!,
          certificateVerifyInput('client', tr.hash(c, 'sha256')),
        ),
      ).toBe(false);
      tr.add(flight[certAt + 1]!);
      expect(hex(finishedKey(c, 'sha256', sHs))).toBe(hex(t.serverFinishedKey));
      expect(hex(finishedVerifyData(c, 'sha256', sHs, tr.hash(c, 'sha256')))).toBe(
        hex(flight[flight.length - 1]!.subarray(4)),
      );
      tr.add(flight[flight.length - 1]!);
      const th = tr.hash(c, 'sha256');
      expect(hex(th)).toBe(hex(t.serverFinishedHash));
      const cAp = ks.clientApplicationTrafficSecret0(th);
      const sAp = ks.serverApplicationTrafficSecret0(th);
      expect(hex(cAp)).toBe(hex(t.clientApplicationTrafficSecret));
      expect(hex(sAp)).toBe(hex(t.serverApplicationTrafficSecret));
      expect(hex(ks.exporterMasterSecret(th))).toBe(hex(t.exporterMasterSecret));
      expect([hex(trafficKeys(c, suite, sAp).key), hex(trafficKeys(c, suite, sAp).iv)]).toEqual([
        hex(t.serverApplicationKey),
        hex(t.serverApplicationIv),
      ]);
      expect([hex(trafficKeys(c, suite, cAp).key), hex(trafficKeys(c, suite, cAp).iv)]).toEqual([
        hex(t.clientApplicationKey),
        hex(t.clientApplicationIv),
      ]);

      // The client's flight: for §6 its Certificate and CertificateVerify come before its Finished.
      const cf = t.clientFlight;
      if (cf.length === 3) {
        tr.add(cf[0]!);
        expect(
          signatureVerifies(cf[0]!, cf[1]!, certificateVerifyInput('client', tr.hash(c, 'sha256'))),
        ).toBe(true);
        tr.add(cf[1]!);
      }
      expect(hex(finishedKey(c, 'sha256', cHs))).toBe(hex(t.clientFinishedKey));
      expect(hex(finishedVerifyData(c, 'sha256', cHs, tr.hash(c, 'sha256')))).toBe(
        hex(cf[cf.length - 1]!.subarray(4)),
      );
      tr.add(cf[cf.length - 1]!);
      expect(hex(tr.hash(c, 'sha256'))).toBe(hex(t.clientFinishedHash));
      expect(hex(ks.resumptionMasterSecret(t.clientFinishedHash))).toBe(hex(t.resumptionMasterSecret));
    });

    it('seals and opens every protected record', () => {
      const server = records(t.serverFlightRecords!);
      const client = records(t.clientFlightRecords!);
      expect([server.ccs, client.ccs]).toEqual([expectCcs, expectCcs]);
      expect(server.protectedRecords.length).toBe(1);
      expect(client.protectedRecords.length).toBe(1);
      const pairs: [Uint8Array, Uint8Array, Uint8Array][] = [
        [t.serverHandshakeTrafficSecret, concatBytes(...t.serverFlight), server.protectedRecords[0]!],
        [t.clientHandshakeTrafficSecret, concatBytes(...t.clientFlight), client.protectedRecords[0]!],
      ];
      for (const [secret, content, record] of pairs) {
        expect(hex(new RecordProtection(c, suite, secret).seal(ContentType.handshake, content))).toBe(
          hex(record),
        );
        expect(hex(new RecordProtection(c, suite, secret).open(record).content)).toBe(hex(content));
      }
      const alert = Uint8Array.of(1, 0);
      expect(
        hex(new RecordProtection(c, suite, t.clientApplicationTrafficSecret).seal(ContentType.alert, alert)),
      ).toBe(hex(t.clientAlertRecord));
      expect(
        hex(new RecordProtection(c, suite, t.serverApplicationTrafficSecret).seal(ContentType.alert, alert)),
      ).toBe(hex(t.serverAlertRecord));
    });
  });

  it('§3 server CertificateVerify (RSA-PSS) verifies over certificateVerifyInput', () => {
    const tr = new Transcript();
    for (const m of [simple.clientHello, simple.serverHello, simple.encryptedExtensions, simple.certificate])
      tr.add(m);
    expect(
      signatureVerifies(
        simple.certificate,
        simple.certificateVerify,
        certificateVerifyInput('server', tr.hash(c, 'sha256')),
      ),
    ).toBe(true);
  });
});
