/**
 * RFC 8448 example handshakes, byte for byte: every secret, key, IV and Finished value the
 * RFC prints, every record (our record layer seals the RFC's plaintext into the RFC's
 * ciphertext and opens the RFC's ciphertext), and every handshake message re-encoded by our
 * codecs. Runs once per crypto provider.
 */
import { concatBytes, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { ContentType, NamedGroup, TLS_1_3 } from '../src/codec/common.ts';
import { findExtension } from '../src/codec/extensions.ts';
import {
  type ClientHello,
  decodeHandshake,
  encodeHandshake,
  HandshakeReassembler,
  truncatedClientHello,
} from '../src/codec/handshake.ts';
import { decodeTLSPlaintext, encodeTLSPlaintext } from '../src/codec/record.ts';
import type { CryptoProvider } from '../src/crypto/provider.ts';
import {
  CIPHER_SUITES,
  deriveSecret,
  finishedKey,
  finishedVerifyData,
  hkdfLabel,
  KeySchedule,
  resumptionPsk,
  Transcript,
  trafficKeys,
} from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { PROVIDERS } from './providers.ts';
import * as hrr from './vectors/rfc8448/hrr.ts';
import * as res from './vectors/rfc8448/resumed.ts';
import * as simple from './vectors/rfc8448/simple.ts';

const suite = CIPHER_SUITES.get(0x1301)!;
const hex = toHex;

/** Decode then re-encode: must give the same bytes. */
function roundTrip(msg: Uint8Array) {
  const m = decodeHandshake(msg);
  expect(hex(encodeHandshake(m))).toBe(hex(msg));
  return m;
}

/** Split a decrypted handshake record into its messages. */
function messages(content: Uint8Array): Uint8Array[] {
  const r = new HandshakeReassembler();
  const out = r.push(content);
  expect(r.empty).toBe(true);
  return out;
}

/** Seal `content` as record number `seq` and compare with the RFC; open the RFC's record. */
function checkRecord(
  c: CryptoProvider,
  secret: Uint8Array,
  seq: bigint,
  type: number,
  content: Uint8Array,
  record: Uint8Array,
) {
  const w = new RecordProtection(c, suite, secret, seq);
  expect(hex(w.seal(type, content))).toBe(hex(record));
  const r = new RecordProtection(c, suite, secret, seq);
  const opened = r.open(record);
  expect(opened.type).toBe(type);
  expect(hex(opened.content)).toBe(hex(content));
}

describe.each(PROVIDERS)('RFC 8448 §3 simple 1-RTT handshake ($name)', (c) => {
  const ks = new KeySchedule(c, 'sha256');
  const emptyHash = c.hash('sha256', new Uint8Array(0));

  it('re-encodes every handshake message byte for byte', () => {
    const ch = roundTrip(simple.clientHello) as ClientHello;
    expect(ch.msgType).toBe('client_hello');
    expect(ch.cipherSuites).toEqual([0x1301, 0x1303, 0x1302]);
    expect(findExtension(ch.extensions, 'server_name')).toEqual({ type: 'server_name', hostName: 'server' });
    expect(findExtension(ch.extensions, 'supported_versions')).toEqual({
      type: 'supported_versions',
      versions: [TLS_1_3],
    });
    expect(findExtension(ch.extensions, 'key_share')).toEqual({
      type: 'key_share',
      clientShares: [{ group: NamedGroup.x25519, keyExchange: simple.clientPublic }],
    });
    expect(findExtension(ch.extensions, 'record_size_limit')).toEqual({
      type: 'record_size_limit',
      limit: 0x4001,
    });
    expect(findExtension(ch.extensions, 'psk_key_exchange_modes')).toEqual({
      type: 'psk_key_exchange_modes',
      modes: [1],
    });
    // renegotiation_info and session_ticket are kept raw, in place.
    expect(ch.extensions.map((e) => (e.type === 'raw' ? e.code : e.type))).toEqual([
      'server_name',
      0xff01,
      'supported_groups',
      35,
      'key_share',
      'supported_versions',
      'signature_algorithms',
      'psk_key_exchange_modes',
      'record_size_limit',
    ]);
    const sh = roundTrip(simple.serverHello);
    expect(sh.msgType).toBe('server_hello');
    if (sh.msgType === 'server_hello') {
      expect(sh.cipherSuite).toBe(0x1301);
      expect(findExtension(sh.extensions, 'supported_versions')).toEqual({
        type: 'supported_versions',
        selectedVersion: TLS_1_3,
      });
    }
    expect(roundTrip(simple.encryptedExtensions).msgType).toBe('encrypted_extensions');
    const cert = roundTrip(simple.certificate);
    expect(cert.msgType === 'certificate' && cert.certificateList.length).toBe(1);
    const cv = roundTrip(simple.certificateVerify);
    expect(cv.msgType === 'certificate_verify' && cv.algorithm).toBe(0x0804);
    roundTrip(simple.serverFinished);
    roundTrip(simple.clientFinished);
    const nst = roundTrip(simple.newSessionTicket);
    expect(nst.msgType).toBe('new_session_ticket');
    if (nst.msgType === 'new_session_ticket') {
      expect(nst.ticketLifetime).toBe(30);
      expect(hex(nst.ticketNonce)).toBe('0000');
      expect(nst.extensions).toEqual([{ type: 'early_data', maxEarlyDataSize: 0x400 }]);
    }
  });

  it('frames the hello records as the RFC', () => {
    const chRecord = encodeTLSPlaintext({
      type: ContentType.handshake,
      legacyRecordVersion: 0x0301,
      fragment: simple.clientHello,
    });
    expect(hex(chRecord)).toBe(hex(concatBytes(simple.clientHelloRecordHeader, simple.clientHello)));
    expect(decodeTLSPlaintext(chRecord).fragment).toEqual(simple.clientHello);
    const shRecord = encodeTLSPlaintext({
      type: ContentType.handshake,
      legacyRecordVersion: 0x0303,
      fragment: simple.serverHello,
    });
    expect(hex(shRecord.subarray(0, 5))).toBe(hex(simple.serverHelloRecordHeader));
  });

  it('agrees on the x25519 shared secret', () => {
    expect(hex(c.generateKeyPair('x25519', simple.clientPrivate).publicKey)).toBe(hex(simple.clientPublic));
    expect(hex(c.generateKeyPair('x25519', simple.serverPrivate).publicKey)).toBe(hex(simple.serverPublic));
    expect(hex(c.sharedSecret('x25519', simple.clientPrivate, simple.serverPublic))).toBe(
      hex(simple.ecdheSecret),
    );
    expect(hex(c.sharedSecret('x25519', simple.serverPrivate, simple.clientPublic))).toBe(
      hex(simple.ecdheSecret),
    );
  });

  it('derives every secret of the key schedule', () => {
    expect(hex(ks.deriveEarlySecret())).toBe(hex(simple.earlySecret));
    expect(hex(deriveSecret(c, 'sha256', ks.earlySecret, 'derived', emptyHash))).toBe(
      hex(simple.derivedForHandshake),
    );
    expect(hex(hkdfLabel('derived', emptyHash, 32))).toBe(hex(simple.derivedInfo));
    expect(hex(ks.deriveHandshakeSecret(simple.ecdheSecret))).toBe(hex(simple.handshakeSecret));

    const t = new Transcript();
    t.add(simple.clientHello);
    t.add(simple.serverHello);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(simple.helloHash));
    const cHs = ks.clientHandshakeTrafficSecret(t.hash(c, 'sha256'));
    const sHs = ks.serverHandshakeTrafficSecret(t.hash(c, 'sha256'));
    expect(hex(cHs)).toBe(hex(simple.clientHandshakeTrafficSecret));
    expect(hex(sHs)).toBe(hex(simple.serverHandshakeTrafficSecret));
    expect(hex(deriveSecret(c, 'sha256', ks.handshakeSecret, 'derived', emptyHash))).toBe(
      hex(simple.derivedForMaster),
    );
    expect(hex(ks.deriveMasterSecret())).toBe(hex(simple.masterSecret));

    const sHsKeys = trafficKeys(c, suite, sHs);
    expect(hex(sHsKeys.key)).toBe(hex(simple.serverHandshakeKey));
    expect(hex(sHsKeys.iv)).toBe(hex(simple.serverHandshakeIv));
    const cHsKeys = trafficKeys(c, suite, cHs);
    expect(hex(cHsKeys.key)).toBe(hex(simple.clientHandshakeKey));
    expect(hex(cHsKeys.iv)).toBe(hex(simple.clientHandshakeIv));

    // Server Finished over ClientHello..CertificateVerify (RFC 8446 §4.4.4).
    t.add(simple.encryptedExtensions);
    t.add(simple.certificate);
    t.add(simple.certificateVerify);
    expect(hex(finishedKey(c, 'sha256', sHs))).toBe(hex(simple.serverFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', sHs, t.hash(c, 'sha256')))).toBe(
      hex(simple.serverFinished.subarray(4)),
    );
    t.add(simple.serverFinished);
    const th = t.hash(c, 'sha256');
    expect(hex(th)).toBe(hex(simple.serverFinishedHash));
    const cAp = ks.clientApplicationTrafficSecret0(th);
    const sAp = ks.serverApplicationTrafficSecret0(th);
    expect(hex(cAp)).toBe(hex(simple.clientApplicationTrafficSecret));
    expect(hex(sAp)).toBe(hex(simple.serverApplicationTrafficSecret));
    expect(hex(ks.exporterMasterSecret(th))).toBe(hex(simple.exporterMasterSecret));
    expect(hex(trafficKeys(c, suite, sAp).key)).toBe(hex(simple.serverApplicationKey));
    expect(hex(trafficKeys(c, suite, sAp).iv)).toBe(hex(simple.serverApplicationIv));
    expect(hex(trafficKeys(c, suite, cAp).key)).toBe(hex(simple.clientApplicationKey));
    expect(hex(trafficKeys(c, suite, cAp).iv)).toBe(hex(simple.clientApplicationIv));

    // Client Finished over ClientHello..server Finished.
    expect(hex(finishedKey(c, 'sha256', cHs))).toBe(hex(simple.clientFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', cHs, th))).toBe(hex(simple.clientFinished.subarray(4)));
    t.add(simple.clientFinished);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(simple.clientFinishedHash));
    const rms = ks.resumptionMasterSecret(t.hash(c, 'sha256'));
    expect(hex(rms)).toBe(hex(simple.resumptionMasterSecret));
    const nst = decodeHandshake(simple.newSessionTicket);
    if (nst.msgType !== 'new_session_ticket') throw new Error('not a NewSessionTicket');
    expect(hex(resumptionPsk(c, 'sha256', rms, nst.ticketNonce))).toBe(hex(simple.resumptionPsk));
  });

  it('seals and opens every protected record', () => {
    const flight = concatBytes(
      simple.encryptedExtensions,
      simple.certificate,
      simple.certificateVerify,
      simple.serverFinished,
    );
    checkRecord(
      c,
      simple.serverHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      flight,
      simple.serverHandshakeRecord,
    );
    const opened = new RecordProtection(c, suite, simple.serverHandshakeTrafficSecret).open(
      simple.serverHandshakeRecord,
    );
    expect(messages(opened.content).map((m) => decodeHandshake(m).msgType)).toEqual([
      'encrypted_extensions',
      'certificate',
      'certificate_verify',
      'finished',
    ]);
    checkRecord(
      c,
      simple.clientHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      simple.clientFinished,
      simple.clientFinishedRecord,
    );
    // Server application epoch: NewSessionTicket (0), data (1), close_notify (2).
    const sAp = simple.serverApplicationTrafficSecret;
    checkRecord(c, sAp, 0n, ContentType.handshake, simple.newSessionTicket, simple.newSessionTicketRecord);
    checkRecord(
      c,
      sAp,
      1n,
      ContentType.application_data,
      simple.applicationData,
      simple.serverApplicationRecord,
    );
    checkRecord(c, sAp, 2n, ContentType.alert, Uint8Array.of(1, 0), simple.serverAlertRecord);
    // Client application epoch: data (0), close_notify (1).
    const cAp = simple.clientApplicationTrafficSecret;
    checkRecord(
      c,
      cAp,
      0n,
      ContentType.application_data,
      simple.applicationData,
      simple.clientApplicationRecord,
    );
    checkRecord(c, cAp, 1n, ContentType.alert, Uint8Array.of(1, 0), simple.clientAlertRecord);
  });

  it('a record sealed in sequence opens only in sequence', () => {
    const w = new RecordProtection(c, suite, simple.serverApplicationTrafficSecret);
    const r = new RecordProtection(c, suite, simple.serverApplicationTrafficSecret);
    const records = [0, 1, 2].map((i) => w.seal(ContentType.application_data, Uint8Array.of(i)));
    expect(hex(records[0]!)).not.toBe(hex(records[1]!));
    expect(() => r.open(records[1]!)).toThrow(/bad_record_mac/);
  });
});

describe.each(PROVIDERS)('RFC 8448 §4 resumed 0-RTT handshake ($name)', (c) => {
  const ks = new KeySchedule(c, 'sha256');
  const clientHello = res.clientHelloRecord.subarray(5);

  it('re-encodes the ClientHello with its PSK offer and the other messages', () => {
    expect(hex(encodeTLSPlaintext(decodeTLSPlaintext(res.clientHelloRecord)))).toBe(
      hex(res.clientHelloRecord),
    );
    const ch = roundTrip(clientHello) as ClientHello;
    const psk = ch.extensions[ch.extensions.length - 1];
    expect(psk?.type).toBe('pre_shared_key');
    if (psk?.type !== 'pre_shared_key' || !('identities' in psk)) throw new Error('no PSK offer');
    const nst = decodeHandshake(simple.newSessionTicket);
    if (nst.msgType !== 'new_session_ticket') throw new Error('not a NewSessionTicket');
    // The identity is §3's ticket; the obfuscated age is the ticket age (6 ms) plus ticket_age_add.
    expect(hex(psk.identities[0]!.identity)).toBe(hex(nst.ticket));
    expect((psk.identities[0]!.obfuscatedTicketAge - nst.ticketAgeAdd) >>> 0).toBe(6);
    expect(hex(psk.binders[0]!)).toBe(hex(res.binder));
    expect(findExtension(ch.extensions, 'early_data')).toEqual({ type: 'early_data' });
    const sh = roundTrip(res.serverHello);
    expect(sh.msgType === 'server_hello' && findExtension(sh.extensions, 'pre_shared_key')).toEqual({
      type: 'pre_shared_key',
      selectedIdentity: 0,
    });
    const ee = roundTrip(res.encryptedExtensions);
    expect(ee.msgType === 'encrypted_extensions' && findExtension(ee.extensions, 'early_data')).toEqual({
      type: 'early_data',
    });
    roundTrip(res.serverFinished);
    roundTrip(res.clientFinished);
    expect(roundTrip(res.endOfEarlyData).msgType).toBe('end_of_early_data');
  });

  it('computes the PSK binder over the truncated ClientHello (RFC 8446 §4.2.11.2)', () => {
    expect(hex(ks.deriveEarlySecret(simple.resumptionPsk))).toBe(hex(res.earlySecret));
    const binderKey = ks.binderKey('resumption');
    expect(hex(binderKey)).toBe(hex(res.binderKey));
    const ch = decodeHandshake(clientHello) as ClientHello;
    const prefix = truncatedClientHello(clientHello, ch);
    expect(hex(c.hash('sha256', prefix))).toBe(hex(res.binderHash));
    expect(hex(finishedKey(c, 'sha256', binderKey))).toBe(hex(res.binderFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', binderKey, res.binderHash))).toBe(hex(res.binder));
  });

  it('derives the early, handshake and application secrets', () => {
    ks.deriveEarlySecret(simple.resumptionPsk);
    const t = new Transcript();
    t.add(clientHello);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(res.clientHelloHash));
    const cEarly = ks.clientEarlyTrafficSecret(res.clientHelloHash);
    expect(hex(cEarly)).toBe(hex(res.clientEarlyTrafficSecret));
    expect(hex(ks.earlyExporterMasterSecret(res.clientHelloHash))).toBe(hex(res.earlyExporterMasterSecret));
    expect(hex(trafficKeys(c, suite, cEarly).key)).toBe(hex(res.earlyKey));
    expect(hex(trafficKeys(c, suite, cEarly).iv)).toBe(hex(res.earlyIv));

    expect(hex(c.sharedSecret('x25519', res.serverPrivate, res.clientPublic))).toBe(hex(res.ecdheSecret));
    expect(hex(c.sharedSecret('x25519', res.clientPrivate, res.serverPublic))).toBe(hex(res.ecdheSecret));
    const emptyHash = c.hash('sha256', new Uint8Array(0));
    expect(hex(deriveSecret(c, 'sha256', ks.earlySecret, 'derived', emptyHash))).toBe(
      hex(res.derivedForHandshake),
    );
    expect(hex(ks.deriveHandshakeSecret(res.ecdheSecret))).toBe(hex(res.handshakeSecret));
    t.add(res.serverHello);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(res.helloHash));
    const cHs = ks.clientHandshakeTrafficSecret(res.helloHash);
    const sHs = ks.serverHandshakeTrafficSecret(res.helloHash);
    expect(hex(cHs)).toBe(hex(res.clientHandshakeTrafficSecret));
    expect(hex(sHs)).toBe(hex(res.serverHandshakeTrafficSecret));
    expect(hex(deriveSecret(c, 'sha256', ks.handshakeSecret, 'derived', emptyHash))).toBe(
      hex(res.derivedForMaster),
    );
    expect(hex(ks.deriveMasterSecret())).toBe(hex(res.masterSecret));
    expect(hex(trafficKeys(c, suite, sHs).key)).toBe(hex(res.serverHandshakeKey));
    expect(hex(trafficKeys(c, suite, sHs).iv)).toBe(hex(res.serverHandshakeIv));
    expect(hex(trafficKeys(c, suite, cHs).key)).toBe(hex(res.clientHandshakeKey));
    expect(hex(trafficKeys(c, suite, cHs).iv)).toBe(hex(res.clientHandshakeIv));

    t.add(res.encryptedExtensions);
    expect(hex(finishedKey(c, 'sha256', sHs))).toBe(hex(res.serverFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', sHs, t.hash(c, 'sha256')))).toBe(
      hex(res.serverFinished.subarray(4)),
    );
    t.add(res.serverFinished);
    const th = t.hash(c, 'sha256');
    expect(hex(th)).toBe(hex(res.serverFinishedHash));
    const cAp = ks.clientApplicationTrafficSecret0(th);
    const sAp = ks.serverApplicationTrafficSecret0(th);
    expect(hex(cAp)).toBe(hex(res.clientApplicationTrafficSecret));
    expect(hex(sAp)).toBe(hex(res.serverApplicationTrafficSecret));
    expect(hex(ks.exporterMasterSecret(th))).toBe(hex(res.exporterMasterSecret));
    expect(hex(trafficKeys(c, suite, sAp).key)).toBe(hex(res.serverApplicationKey));
    expect(hex(trafficKeys(c, suite, sAp).iv)).toBe(hex(res.serverApplicationIv));
    expect(hex(trafficKeys(c, suite, cAp).key)).toBe(hex(res.clientApplicationKey));
    expect(hex(trafficKeys(c, suite, cAp).iv)).toBe(hex(res.clientApplicationIv));

    // EndOfEarlyData is part of the transcript before the client Finished (RFC 8446 §4.4.1).
    t.add(res.endOfEarlyData);
    expect(hex(finishedKey(c, 'sha256', cHs))).toBe(hex(res.clientFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', cHs, t.hash(c, 'sha256')))).toBe(
      hex(res.clientFinished.subarray(4)),
    );
    t.add(res.clientFinished);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(res.clientFinishedHash));
    expect(hex(ks.resumptionMasterSecret(res.clientFinishedHash))).toBe(hex(res.resumptionMasterSecret));
  });

  it('seals and opens every protected record, 0-RTT included', () => {
    const early = res.clientEarlyTrafficSecret;
    checkRecord(c, early, 0n, ContentType.application_data, res.earlyData, res.earlyDataRecord);
    checkRecord(c, early, 1n, ContentType.handshake, res.endOfEarlyData, res.endOfEarlyDataRecord);
    checkRecord(
      c,
      res.serverHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      concatBytes(res.encryptedExtensions, res.serverFinished),
      res.serverHandshakeRecord,
    );
    checkRecord(
      c,
      res.clientHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      res.clientFinished,
      res.clientFinishedRecord,
    );
    const cAp = res.clientApplicationTrafficSecret;
    const sAp = res.serverApplicationTrafficSecret;
    checkRecord(
      c,
      cAp,
      0n,
      ContentType.application_data,
      simple.applicationData,
      res.clientApplicationRecord,
    );
    checkRecord(
      c,
      sAp,
      0n,
      ContentType.application_data,
      simple.applicationData,
      res.serverApplicationRecord,
    );
    checkRecord(c, cAp, 1n, ContentType.alert, Uint8Array.of(1, 0), res.clientAlertRecord);
    checkRecord(c, sAp, 1n, ContentType.alert, Uint8Array.of(1, 0), res.serverAlertRecord);
  });
});

describe.each(PROVIDERS)('RFC 8448 §5 HelloRetryRequest ($name)', (c) => {
  const ch1 = hrr.clientHello1Record.subarray(5);
  const hrrMsg = hrr.helloRetryRequestRecord.subarray(5);
  const ch2 = hrr.clientHello2Record.subarray(5);
  const sh = hrr.serverHelloRecord.subarray(5);

  it('detects the HelloRetryRequest and re-encodes every message', () => {
    for (const rec of [
      hrr.clientHello1Record,
      hrr.helloRetryRequestRecord,
      hrr.clientHello2Record,
      hrr.serverHelloRecord,
    ]) {
      expect(hex(encodeTLSPlaintext(decodeTLSPlaintext(rec)))).toBe(hex(rec));
    }
    roundTrip(ch1);
    const retry = roundTrip(hrrMsg);
    expect(retry.msgType).toBe('hello_retry_request');
    if (retry.msgType !== 'hello_retry_request') throw new Error('not an HRR');
    expect(findExtension(retry.extensions, 'key_share')).toEqual({
      type: 'key_share',
      selectedGroup: NamedGroup.secp256r1,
    });
    const cookie = findExtension(retry.extensions, 'cookie');
    expect(cookie?.cookie.length).toBe(0x72);
    const second = roundTrip(ch2) as ClientHello;
    // RFC 8446 §4.1.2: the second ClientHello echoes the cookie and carries one P-256 share.
    expect(findExtension(second.extensions, 'cookie')).toEqual(cookie);
    expect(findExtension(second.extensions, 'key_share')).toEqual({
      type: 'key_share',
      clientShares: [{ group: NamedGroup.secp256r1, keyExchange: hrr.clientP256Public }],
    });
    expect(roundTrip(sh).msgType).toBe('server_hello');
    roundTrip(hrr.encryptedExtensions);
    roundTrip(hrr.certificateVerify);
    const cr = roundTrip(hrr.certificateRequest);
    expect(cr.msgType === 'certificate_request' && cr.extensions[0]?.type).toBe('signature_algorithms');
  });

  it('agrees on the P-256 shared secret', () => {
    expect(hex(c.generateKeyPair('x25519', hrr.clientX25519Private).publicKey)).toBe(
      hex(hrr.clientX25519Public),
    );
    expect(hex(c.generateKeyPair('secp256r1', hrr.clientP256Private).publicKey)).toBe(
      hex(hrr.clientP256Public),
    );
    expect(hex(c.generateKeyPair('secp256r1', hrr.serverP256Private).publicKey)).toBe(
      hex(hrr.serverP256Public),
    );
    expect(hex(c.sharedSecret('secp256r1', hrr.clientP256Private, hrr.serverP256Public))).toBe(
      hex(hrr.ecdheSecret),
    );
    expect(hex(c.sharedSecret('secp256r1', hrr.serverP256Private, hrr.clientP256Public))).toBe(
      hex(hrr.ecdheSecret),
    );
  });

  it('hashes the transcript with message_hash in place of ClientHello1 (RFC 8446 §4.4.1)', () => {
    const t = new Transcript();
    t.add(ch1);
    t.replaceWithMessageHash(c, 'sha256');
    expect(hex(t.bytes)).toBe(`fe000020${hex(c.hash('sha256', ch1))}`);
    t.add(hrrMsg);
    t.add(ch2);
    t.add(sh);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(hrr.helloHash));

    const ks = new KeySchedule(c, 'sha256');
    expect(hex(ks.deriveEarlySecret())).toBe(hex(hrr.earlySecret));
    expect(hex(ks.deriveHandshakeSecret(hrr.ecdheSecret))).toBe(hex(hrr.handshakeSecret));
    const cHs = ks.clientHandshakeTrafficSecret(hrr.helloHash);
    const sHs = ks.serverHandshakeTrafficSecret(hrr.helloHash);
    expect(hex(cHs)).toBe(hex(hrr.clientHandshakeTrafficSecret));
    expect(hex(sHs)).toBe(hex(hrr.serverHandshakeTrafficSecret));
    const emptyHash = c.hash('sha256', new Uint8Array(0));
    expect(hex(deriveSecret(c, 'sha256', ks.handshakeSecret, 'derived', emptyHash))).toBe(
      hex(hrr.derivedForMaster),
    );
    expect(hex(ks.deriveMasterSecret())).toBe(hex(hrr.masterSecret));
    expect(hex(trafficKeys(c, suite, sHs).key)).toBe(hex(hrr.serverHandshakeKey));
    expect(hex(trafficKeys(c, suite, sHs).iv)).toBe(hex(hrr.serverHandshakeIv));
    expect(hex(trafficKeys(c, suite, cHs).key)).toBe(hex(hrr.clientHandshakeKey));
    expect(hex(trafficKeys(c, suite, cHs).iv)).toBe(hex(hrr.clientHandshakeIv));

    t.add(hrr.encryptedExtensions);
    t.add(simple.certificate);
    t.add(hrr.certificateVerify);
    expect(hex(finishedKey(c, 'sha256', sHs))).toBe(hex(hrr.serverFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', sHs, t.hash(c, 'sha256')))).toBe(
      hex(hrr.serverFinished.subarray(4)),
    );
    t.add(hrr.serverFinished);
    const th = t.hash(c, 'sha256');
    expect(hex(th)).toBe(hex(hrr.serverFinishedHash));
    const cAp = ks.clientApplicationTrafficSecret0(th);
    const sAp = ks.serverApplicationTrafficSecret0(th);
    expect(hex(cAp)).toBe(hex(hrr.clientApplicationTrafficSecret));
    expect(hex(sAp)).toBe(hex(hrr.serverApplicationTrafficSecret));
    expect(hex(ks.exporterMasterSecret(th))).toBe(hex(hrr.exporterMasterSecret));
    expect(hex(trafficKeys(c, suite, sAp).key)).toBe(hex(hrr.serverApplicationKey));
    expect(hex(trafficKeys(c, suite, sAp).iv)).toBe(hex(hrr.serverApplicationIv));
    expect(hex(trafficKeys(c, suite, cAp).key)).toBe(hex(hrr.clientApplicationKey));
    expect(hex(trafficKeys(c, suite, cAp).iv)).toBe(hex(hrr.clientApplicationIv));
    expect(hex(finishedKey(c, 'sha256', cHs))).toBe(hex(hrr.clientFinishedKey));
    expect(hex(finishedVerifyData(c, 'sha256', cHs, th))).toBe(hex(hrr.clientFinished.subarray(4)));
    t.add(hrr.clientFinished);
    expect(hex(t.hash(c, 'sha256'))).toBe(hex(hrr.clientFinishedHash));
    expect(hex(ks.resumptionMasterSecret(hrr.clientFinishedHash))).toBe(hex(hrr.resumptionMasterSecret));
  });

  it('seals and opens every protected record', () => {
    const flight = concatBytes(
      hrr.encryptedExtensions,
      simple.certificate,
      hrr.certificateVerify,
      hrr.serverFinished,
    );
    checkRecord(
      c,
      hrr.serverHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      flight,
      hrr.serverHandshakeRecord,
    );
    checkRecord(
      c,
      hrr.clientHandshakeTrafficSecret,
      0n,
      ContentType.handshake,
      hrr.clientFinished,
      hrr.clientFinishedRecord,
    );
    checkRecord(
      c,
      hrr.clientApplicationTrafficSecret,
      0n,
      ContentType.alert,
      Uint8Array.of(1, 0),
      hrr.clientAlertRecord,
    );
    checkRecord(
      c,
      hrr.serverApplicationTrafficSecret,
      0n,
      ContentType.alert,
      Uint8Array.of(1, 0),
      hrr.serverAlertRecord,
    );
  });
});
