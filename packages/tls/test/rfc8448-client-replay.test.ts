/**
 * Our TlsClient replays RFC 8448 §3 and §4 byte for byte. Given the RFC's random and
 * x25519 keys, the RFC's groups and signature schemes as options, and a ClientHello hook
 * that only adds the raw extensions NSS sends and uses NSS's order, it writes the RFC's
 * ClientHello, accepts the RFC server's flight, writes the RFC's Finished, turns the RFC's
 * NewSessionTicket into the RFC's PSK, and then resumes with 0-RTT: the RFC's ClientHello
 * with its binder, the RFC's early data, EndOfEarlyData and Finished records. Likewise §5:
 * both ClientHellos around the HelloRetryRequest and the Finished after it.
 */
import { constants, verify, X509Certificate } from 'node:crypto';
import { concatBytes, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { CertificateVerifier } from '../src/auth.ts';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { ExtensionType } from '../src/codec/common.ts';
import type { Extension } from '../src/codec/extensions.ts';
import { type ClientHello, decodeHandshake } from '../src/codec/handshake.ts';
import type { SessionTicket, TlsEvent } from '../src/connection.ts';
import { RFC_GROUPS, RFC_SCHEMES, scripted } from './helpers/rfc8448.ts';
import { PROVIDERS } from './providers.ts';
import { h } from './vectors/rfc8448/hex.ts';
import * as hrr from './vectors/rfc8448/hrr.ts';
import * as res from './vectors/rfc8448/resumed.ts';
import * as simple from './vectors/rfc8448/simple.ts';

const hex = toHex;

/** Trusts exactly the RFC's (long expired, 1024-bit) test certificate; signatures checked by OpenSSL. */
function rfcVerifier(): CertificateVerifier {
  const cert = decodeHandshake(simple.certificate);
  if (cert.msgType !== 'certificate') throw new Error('not a Certificate');
  const der = cert.certificateList[0]!.certData;
  return {
    signatureSchemes: RFC_SCHEMES,
    verifyChain(chain, ctx) {
      expect(hex(chain[0]!)).toBe(hex(der));
      expect(ctx.serverName).toBe('server');
    },
    verifySignature(leaf, scheme, content, signature) {
      const key = new X509Certificate(Buffer.from(leaf)).publicKey;
      if (scheme !== 0x0804) return false;
      return verify(
        'sha256',
        content,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        signature,
      );
    },
  };
}

/** NSS's extension order, with its two extra raw extensions (renegotiation_info, session_ticket or padding). */
function nssOrder(resumed: boolean) {
  return (ch: ClientHello): ClientHello => {
    const get = (t: Extension['type']) => ch.extensions.find((e) => e.type === t)!;
    const raw = (code: number, data: Uint8Array): Extension => ({ type: 'raw', code, data });
    const exts: Extension[] = resumed
      ? [
          get('server_name'),
          raw(0xff01, Uint8Array.of(0)),
          get('supported_groups'),
          get('key_share'),
          get('early_data'),
          get('supported_versions'),
          get('signature_algorithms'),
          get('psk_key_exchange_modes'),
          get('record_size_limit'),
          raw(ExtensionType.padding, new Uint8Array(0x57)),
          get('pre_shared_key'),
        ]
      : [
          get('server_name'),
          raw(0xff01, Uint8Array.of(0)),
          get('supported_groups'),
          raw(35, new Uint8Array(0)),
          get('key_share'),
          get('supported_versions'),
          get('signature_algorithms'),
          get('psk_key_exchange_modes'),
          get('record_size_limit'),
        ];
    return { ...ch, extensions: exts };
  };
}

/** NSS's order for RFC 8448 §5: the second ClientHello adds the cookie and pads to 512 bytes. */
function nssRetryOrder(ch: ClientHello): ClientHello {
  const get = (t: Extension['type']) => ch.extensions.find((e) => e.type === t);
  const cookie = get('cookie');
  const exts = [
    get('server_name'),
    { type: 'raw', code: 0xff01, data: Uint8Array.of(0) } as Extension,
    get('supported_groups'),
    get('key_share'),
    get('supported_versions'),
    get('signature_algorithms'),
    cookie,
    get('psk_key_exchange_modes'),
    get('record_size_limit'),
    cookie
      ? ({ type: 'raw', code: ExtensionType.padding, data: new Uint8Array(0xaf) } as Extension)
      : undefined,
  ].filter((e): e is Extension => e !== undefined);
  return { ...ch, extensions: exts };
}

const of = <T extends TlsEvent['type']>(events: TlsEvent[], type: T) =>
  events.filter((e): e is Extract<TlsEvent, { type: T }> => e.type === type);

describe.each(PROVIDERS)('our client replays RFC 8448 §3 and §4 ($name)', (c) => {
  const common: Omit<TlsClientOptions, 'crypto'> = {
    serverName: 'server',
    verifier: rfcVerifier(),
    groups: RFC_GROUPS,
    cipherSuites: [0x1301, 0x1303, 0x1302],
  };
  const T0 = 1_000_000;

  it('§3: every record the client writes, and the ticket', () => {
    const log: string[] = [];
    const client = new TlsClient({
      ...common,
      crypto: scripted(c, simple.clientHello.subarray(6, 38), simple.clientPrivate),
      customizeHello: nssOrder(false),
      keyLog: (l) => log.push(l),
    });
    expect(client.start(T0).data.map(hex)).toEqual([
      hex(concatBytes(simple.clientHelloRecordHeader, simple.clientHello)),
    ]);
    const flight = client.receive(
      concatBytes(simple.serverHelloRecordHeader, simple.serverHello, simple.serverHandshakeRecord),
      T0,
    );
    expect(of(flight.events, 'error')).toEqual([]);
    expect(flight.data.map(hex)).toEqual([hex(simple.clientFinishedRecord)]);
    expect(of(flight.events, 'handshake-complete')[0]).toMatchObject({ resumed: false, group: 'x25519' });
    const t = client.receive(simple.newSessionTicketRecord, T0);
    const ticket = of(t.events, 'session-ticket')[0]!.ticket;
    expect(hex(ticket.psk)).toBe(hex(simple.resumptionPsk));
    expect(ticket).toMatchObject({
      lifetimeSeconds: 30,
      maxEarlyDataSize: 0x400,
      cipherSuite: 0x1301,
      receivedAt: T0,
    });
    expect(client.send(simple.applicationData, T0).data.map(hex)).toEqual([
      hex(simple.clientApplicationRecord),
    ]);
    expect(of(client.receive(simple.serverApplicationRecord, T0).events, 'data')[0]!.data).toEqual(
      simple.applicationData,
    );
    expect(client.close(T0).data.map(hex)).toEqual([hex(simple.clientAlertRecord)]);
    expect(client.receive(simple.serverAlertRecord, T0).events).toEqual([{ type: 'peer-closed' }]);
    expect(log).toContain(
      `SERVER_HANDSHAKE_TRAFFIC_SECRET ${hex(simple.clientHello.subarray(6, 38))} ${hex(simple.serverHandshakeTrafficSecret)}`,
    );
  });

  it('§5: HelloRetryRequest to P-256, every record the client writes', () => {
    const ch1 = hrr.clientHello1Record.subarray(5);
    const client = new TlsClient({
      ...common,
      groups: [0x001d, 0x0017, 0x0018],
      crypto: scripted(c, ch1.subarray(6, 38), hrr.clientX25519Private, hrr.clientP256Private),
      customizeHello: nssRetryOrder,
    });
    expect(client.start(T0).data.map(hex)).toEqual([hex(hrr.clientHello1Record)]);
    const retry = client.receive(hrr.helloRetryRequestRecord, T0);
    expect(of(retry.events, 'error')).toEqual([]);
    expect(retry.data.map(hex)).toEqual([hex(hrr.clientHello2Record)]);
    const flight = client.receive(concatBytes(hrr.serverHelloRecord, hrr.serverHandshakeRecord), T0);
    expect(of(flight.events, 'error')).toEqual([]);
    expect(flight.data.map(hex)).toEqual([hex(hrr.clientFinishedRecord)]);
    expect(of(flight.events, 'handshake-complete')[0]).toMatchObject({ group: 'secp256r1' });
    expect(client.close(T0).data.map(hex)).toEqual([hex(hrr.clientAlertRecord)]);
    expect(client.receive(hrr.serverAlertRecord, T0).events).toEqual([{ type: 'peer-closed' }]);
  });

  it('§4: resumption with 0-RTT, every record the client writes', () => {
    const first = new TlsClient({
      ...common,
      crypto: scripted(c, simple.clientHello.subarray(6, 38), simple.clientPrivate),
      customizeHello: nssOrder(false),
    });
    first.start(T0);
    first.receive(
      concatBytes(simple.serverHelloRecordHeader, simple.serverHello, simple.serverHandshakeRecord),
      T0,
    );
    const ticket: SessionTicket = of(
      first.receive(simple.newSessionTicketRecord, T0).events,
      'session-ticket',
    )[0]!.ticket;

    const ch = res.clientHelloRecord.subarray(5);
    const client = new TlsClient({
      ...common,
      crypto: scripted(c, ch.subarray(6, 38), res.clientPrivate),
      session: ticket,
      earlyData: res.earlyData,
      customizeHello: nssOrder(true),
    });
    // The RFC client's ticket was 6 ms old: obfuscated_ticket_age = 6 + ticket_age_add.
    const hello = client.start(T0 + 6);
    expect(hello.data.map(hex)).toEqual([hex(res.clientHelloRecord), hex(res.earlyDataRecord)]);
    const sh = concatBytes(h('16 03 03 00 60'), res.serverHello, res.serverHandshakeRecord);
    const flight = client.receive(sh, T0 + 6);
    expect(of(flight.events, 'error')).toEqual([]);
    expect(of(flight.events, 'early-data-status')).toEqual([{ type: 'early-data-status', accepted: true }]);
    expect(flight.data.map(hex)).toEqual([hex(res.endOfEarlyDataRecord), hex(res.clientFinishedRecord)]);
    expect(of(flight.events, 'handshake-complete')[0]).toMatchObject({ resumed: true, peerCertificates: [] });
    expect(client.send(simple.applicationData, T0).data.map(hex)).toEqual([hex(res.clientApplicationRecord)]);
    expect(of(client.receive(res.serverApplicationRecord, T0).events, 'data')[0]!.data).toEqual(
      simple.applicationData,
    );
    expect(client.close(T0).data.map(hex)).toEqual([hex(res.clientAlertRecord)]);
  });
});
