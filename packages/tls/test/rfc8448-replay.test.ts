/**
 * Our TlsServer machine replays RFC 8448 §3 byte for byte: fed the RFC's ClientHello, with
 * the RFC's server random and x25519 key and a signer that returns the RFC's signature for
 * exactly the content the RFC signed, it writes the RFC's ServerHello record and the RFC's
 * encrypted server flight, accepts the RFC's client Finished, and protects application
 * data and close_notify exactly as the RFC does. Likewise §5: the RFC's HelloRetryRequest
 * (with NSS's cookie handed in), ServerHello and P-256 flight; and §4: with a ticket codec
 * that knows NSS's ticket, the resumed handshake, 0-RTT data and EndOfEarlyData.
 */
import { concatBytes, toHex, utf8 } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { CertificateSigner } from '../src/auth.ts';
import { decodeHandshake } from '../src/codec/handshake.ts';
import type { TlsEvent } from '../src/connection.ts';
import { CIPHER_SUITES } from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { AntiReplayCache, type TicketState, TlsServer } from '../src/server.ts';
import { scripted } from './helpers/rfc8448.ts';
import { PROVIDERS } from './providers.ts';
import { h } from './vectors/rfc8448/hex.ts';
import * as hrr from './vectors/rfc8448/hrr.ts';
import * as res from './vectors/rfc8448/resumed.ts';
import * as simple from './vectors/rfc8448/simple.ts';

const hex = toHex;

describe.each(PROVIDERS)('our server replays RFC 8448 §3 ($name)', (c) => {
  it('writes the RFC records byte for byte', () => {
    const sh = decodeHandshake(simple.serverHello);
    if (sh.msgType !== 'server_hello') throw new Error('not a ServerHello');
    const cert = decodeHandshake(simple.certificate);
    if (cert.msgType !== 'certificate') throw new Error('not a Certificate');
    // What RFC 8448 §3's server signed (RFC 8446 §4.4.3): spaces, context, 0, Transcript-Hash(ClientHello..Certificate).
    const signed = concatBytes(
      new Uint8Array(64).fill(0x20),
      utf8('TLS 1.3, server CertificateVerify'),
      Uint8Array.of(0),
      h('764d6632b3c35c3f3205e3499ac3edbaabb88295fba751461d3678e2e5ea0687'),
    );
    const asked: string[] = [];
    const signer: CertificateSigner = {
      certificateChain: [cert.certificateList[0]!.certData],
      signatureSchemes: [0x0804],
      sign(scheme, content) {
        asked.push(`${scheme}:${hex(content)}`);
        // RSA-PSS is randomized: return the RFC's signature, but only for the RFC's content.
        return hex(content) === hex(signed) ? simple.certificateVerify.subarray(8) : new Uint8Array(128);
      },
    };
    const serverLog: string[] = [];
    const server = new TlsServer({
      crypto: scripted(c, sh.random, simple.serverPrivate),
      signer,
      ticketKey: new Uint8Array(32),
      // The groups NSS advertises in the RFC's EncryptedExtensions; we pick x25519 from them.
      groups: [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104],
      keyLog: (l) => serverLog.push(l),
    });
    const flight = server.receive(concatBytes(simple.clientHelloRecordHeader, simple.clientHello), 0);
    expect(flight.events).toEqual([]);
    expect(asked).toEqual([`2052:${hex(signed)}`]);
    expect(flight.data.map(hex)).toEqual([
      hex(concatBytes(simple.serverHelloRecordHeader, simple.serverHello)),
      hex(simple.serverHandshakeRecord),
    ]);
    expect(server.state).toBe('WAIT_FINISHED');

    const done = server.receive(simple.clientFinishedRecord, 0);
    expect(done.events[0]).toMatchObject({
      type: 'handshake-complete',
      cipherSuite: 'TLS_AES_128_GCM_SHA256',
      serverName: 'server',
    });
    // One NewSessionTicket (our own ticket, so not the RFC's bytes) at sequence number 0.
    expect(done.data.length).toBe(1);
    const nst = new RecordProtection(
      c,
      CIPHER_SUITES.get(0x1301)!,
      simple.serverApplicationTrafficSecret,
    ).open(done.data[0]!);
    expect(decodeHandshake(nst.content).msgType).toBe('new_session_ticket');
    // Then the RFC's application data and close_notify, at sequence numbers 1 and 2.
    expect(server.send(simple.applicationData, 0).data.map(hex)).toEqual([
      hex(simple.serverApplicationRecord),
    ]);
    const got = server.receive(simple.clientApplicationRecord, 0).events;
    expect(got).toEqual([{ type: 'data', data: simple.applicationData } satisfies TlsEvent]);
    expect(server.receive(simple.clientAlertRecord, 0).events).toEqual([{ type: 'peer-closed' }]);
    expect(server.close(0).data.map(hex)).toEqual([hex(simple.serverAlertRecord)]);
    expect(server.state).toBe('CLOSED');

    const random = hex(simple.clientHello.subarray(6, 38));
    expect(serverLog).toContain(
      `CLIENT_HANDSHAKE_TRAFFIC_SECRET ${random} ${hex(simple.clientHandshakeTrafficSecret)}`,
    );
    expect(serverLog).toContain(
      `SERVER_TRAFFIC_SECRET_0 ${random} ${hex(simple.serverApplicationTrafficSecret)}`,
    );
    expect(serverLog).toContain(`EXPORTER_SECRET ${random} ${hex(simple.exporterMasterSecret)}`);
  });

  it('§5: HelloRetryRequest with a cookie, then P-256, byte for byte', () => {
    const hrrMsg = decodeHandshake(hrr.helloRetryRequestRecord.subarray(5));
    if (hrrMsg.msgType !== 'hello_retry_request') throw new Error('not an HRR');
    const rfcCookie = hrrMsg.extensions.find((e) => e.type === 'cookie');
    if (rfcCookie?.type !== 'cookie') throw new Error('no cookie');
    const sh = decodeHandshake(hrr.serverHelloRecord.subarray(5));
    if (sh.msgType !== 'server_hello') throw new Error('not a ServerHello');
    const cert = decodeHandshake(simple.certificate);
    if (cert.msgType !== 'certificate') throw new Error('not a Certificate');
    const signed = concatBytes(
      new Uint8Array(64).fill(0x20),
      utf8('TLS 1.3, server CertificateVerify'),
      Uint8Array.of(0),
      h('a303fd397938c2b5c3fb0dfb33bd6c46d890331e3be5ed3b8ea2be5218c3db1a'),
    );
    const server = new TlsServer({
      crypto: scripted(c, sh.random, new Uint8Array(32).fill(1), hrr.serverP256Private),
      signer: {
        certificateChain: [cert.certificateList[0]!.certData],
        signatureSchemes: [0x0804],
        sign: (_scheme, content) =>
          hex(content) === hex(signed) ? hrr.certificateVerify.subarray(8) : new Uint8Array(128),
      },
      ticketKey: new Uint8Array(32),
      ticketsToSend: 0,
      // NSS prefers P-256 enough to ask for it although the client sent an x25519 share.
      groups: [0x0017, 0x0018, 0x001d],
      groupSelection: 'preference',
      helloRetryCookie: () => rfcCookie.cookie,
    });
    expect(server.receive(hrr.clientHello1Record, 0).data.map(hex)).toEqual([
      hex(hrr.helloRetryRequestRecord),
    ]);
    expect(server.state).toBe('START');
    const flight = server.receive(hrr.clientHello2Record, 0);
    expect(flight.events).toEqual([]);
    expect(flight.data.map(hex)).toEqual([hex(hrr.serverHelloRecord), hex(hrr.serverHandshakeRecord)]);
    expect(server.receive(hrr.clientFinishedRecord, 0).events[0]).toMatchObject({
      type: 'handshake-complete',
      group: 'secp256r1',
    });
    expect(server.receive(hrr.clientAlertRecord, 0).events).toEqual([{ type: 'peer-closed' }]);
    expect(server.close(0).data.map(hex)).toEqual([hex(hrr.serverAlertRecord)]);
  });

  it('refuses a second ClientHello that drops our cookie', () => {
    const server = new TlsServer({
      crypto: c,
      signer: {
        certificateChain: [new Uint8Array(1)],
        signatureSchemes: [0x0804],
        sign: () => new Uint8Array(0),
      },
      groups: [0x0017, 0x001d],
      groupSelection: 'preference',
      helloRetryCookie: () => Uint8Array.of(1, 2, 3),
    });
    server.receive(hrr.clientHello1Record, 0);
    // The RFC's second ClientHello carries NSS's cookie, not ours.
    expect(server.receive(hrr.clientHello2Record, 0).events[0]).toMatchObject({
      type: 'error',
      alertName: 'illegal_parameter',
    });
  });

  it('§4: resumption with 0-RTT accepted, byte for byte', () => {
    const NOW = 5_000_000;
    const nst = decodeHandshake(simple.newSessionTicket);
    if (nst.msgType !== 'new_session_ticket') throw new Error('not a NewSessionTicket');
    const sh = decodeHandshake(res.serverHello);
    if (sh.msgType !== 'server_hello') throw new Error('not a ServerHello');
    // §3's ticket is NSS's; a ticket codec maps it to the state §3 established (the ticket was 6 ms old).
    const state: TicketState = {
      cipherSuite: 0x1301,
      issuedAt: NOW - 6,
      lifetimeSeconds: nst.ticketLifetime,
      ageAdd: nst.ticketAgeAdd,
      maxEarlyData: 0x400,
      alpn: '',
      psk: simple.resumptionPsk,
    };
    const server = new TlsServer({
      crypto: scripted(c, sh.random, res.serverPrivate),
      signer: { certificateChain: [], signatureSchemes: [], sign: () => new Uint8Array(0) },
      ticketCodec: {
        seal: () => new Uint8Array(1),
        open: (ticket) => (hex(ticket) === hex(nst.ticket) ? state : undefined),
      },
      antiReplay: new AntiReplayCache(),
      ticketKey: new Uint8Array(32),
      ticketsToSend: 0,
      groups: [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104],
    });
    const flight = server.receive(res.clientHelloRecord, NOW);
    expect(flight.events).toEqual([]);
    expect(flight.data.map(hex)).toEqual([
      hex(concatBytes(h('16 03 03 00 60'), res.serverHello)),
      hex(res.serverHandshakeRecord),
    ]);
    expect(server.state).toBe('WAIT_EOED');
    expect(server.receive(res.earlyDataRecord, NOW).events).toEqual([
      { type: 'early-data', data: res.earlyData },
    ]);
    expect(server.receive(res.endOfEarlyDataRecord, NOW).events).toEqual([]);
    expect(server.state).toBe('WAIT_FINISHED');
    expect(server.receive(res.clientFinishedRecord, NOW).events[0]).toMatchObject({
      type: 'handshake-complete',
      resumed: true,
    });
    expect(server.send(simple.applicationData, NOW).data.map(hex)).toEqual([
      hex(res.serverApplicationRecord),
    ]);
    expect(server.receive(res.clientApplicationRecord, NOW).events).toEqual([
      { type: 'data', data: simple.applicationData },
    ]);
    expect(server.receive(res.clientAlertRecord, NOW).events).toEqual([{ type: 'peer-closed' }]);
    expect(server.close(NOW).data.map(hex)).toEqual([hex(res.serverAlertRecord)]);
  });
});
