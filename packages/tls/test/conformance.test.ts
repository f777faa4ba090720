/**
 * What an independent TLS 1.3 conformance suite checks and we once got wrong (issue #12): the
 * alert RFC 8446 names for each mistake (§6.2 and the MUSTs of §4, §5, §D.5; RFC 8449 §4),
 * no zero-length application_data records for empty writes, records ahead of a bad header in
 * the same read still answered. Machines with the MITM of helpers/mitm.ts in between, as in
 * negative-state.test.ts; each case names the alert and the sentence it comes from.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient } from '../src/client.ts';
import { AlertDescription, type AlertDescriptionName, alertForParseError } from '../src/codec/alert.ts';
import { ContentType, ExtensionType, HandshakeType } from '../src/codec/common.ts';
import type { Extension } from '../src/codec/extensions.ts';
import { type ClientHello, decodeHandshake, encodeHandshake } from '../src/codec/handshake.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { TlsServer } from '../src/server.ts';
import { TlsSocket } from '../src/socket.ts';
import {
  appDataFrom,
  c2s,
  completed,
  concatAll,
  type Edit,
  firstError,
  has,
  Mitm,
  nodePairs,
  type OutRecord,
  once,
  runMachines,
  type Scenario,
  type SeenRecord,
  s2c,
  type TestPki,
  testPki,
} from './helpers/mitm.ts';

const NOW = Date.now();
const crypto = nobleCrypto;
let pki: TestPki;
beforeAll(() => {
  pki = testPki(NOW);
});

/** A raw handshake message: type, 24-bit length, body. */
const rawMessage = (type: number, body: number[] | Uint8Array): Uint8Array =>
  concatAll([Uint8Array.of(type, 0, (body.length >> 8) & 0xff, body.length & 0xff), Uint8Array.from(body)]);
/** A whole record as bytes, any type and length. */
const rawRecord = (type: number, body: Uint8Array): OutRecord => ({
  raw: concatAll([Uint8Array.of(type, 3, 3, body.length >> 8, body.length & 0xff), body]),
});

/** The record's ClientHello changed by `f` (its other messages, if any, kept). */
const editClientHello =
  (f: (ch: ClientHello) => ClientHello | Uint8Array) =>
  (r: SeenRecord): OutRecord[] => {
    const ch = decodeHandshake(r.messages[0]!) as ClientHello;
    const out = f(ch);
    return [{ type: ContentType.handshake, content: out instanceof Uint8Array ? out : encodeHandshake(out) }];
  };
const withExtensions = (ch: ClientHello, exts: Extension[]): ClientHello => ({ ...ch, extensions: exts });
const raw = (code: number, data: number[] = []): Extension => ({
  type: 'raw',
  code,
  data: Uint8Array.from(data),
});

interface Case {
  name: string;
  detector: 'client' | 'server';
  alert: AlertDescriptionName;
  connected?: boolean;
  clientWrites?: string;
  edit: () => Edit;
}

const CASES: Case[] = [
  // ---- Handshake message contents ----
  {
    // RFC 8446 §4.6.3: "If an implementation receives any other value [than 0 or 1], it MUST
    // terminate the connection with an "illegal_parameter" alert."
    name: 'a KeyUpdate with request_update 2',
    detector: 'server',
    alert: 'illegal_parameter',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [
      { type: ContentType.handshake, content: rawMessage(HandshakeType.key_update, [2]) },
    ]),
  },
  {
    name: 'a KeyUpdate with request_update 255, at the client',
    detector: 'client',
    alert: 'illegal_parameter',
    connected: true,
    edit: once(s2c('application', HandshakeType.new_session_ticket), () => [
      { type: ContentType.handshake, content: rawMessage(HandshakeType.key_update, [255]) },
    ]),
  },
  {
    // RFC 8446 §4.4.4: verify_data is Hash.length bytes; §6.2 decode_error: "the length of the
    // message was incorrect". A wrong value of the right length stays a decrypt_error.
    name: 'a client Finished of 31 bytes (SHA-256 suite)',
    detector: 'server',
    alert: 'decode_error',
    edit: once(c2s('handshake', HandshakeType.finished), () => [
      { type: ContentType.handshake, content: rawMessage(HandshakeType.finished, new Uint8Array(31)) },
    ]),
  },
  {
    name: 'a server Finished of 33 bytes (SHA-256 suite)',
    detector: 'client',
    alert: 'decode_error',
    edit: once(s2c('handshake', HandshakeType.finished), (r) => [
      {
        type: ContentType.handshake,
        content: concatAll([
          ...r.messages.filter((m) => m[0] !== HandshakeType.finished),
          rawMessage(HandshakeType.finished, new Uint8Array(33)),
        ]),
      },
    ]),
  },
  {
    name: 'control: a client Finished of 32 wrong bytes is a decrypt_error',
    detector: 'server',
    alert: 'decrypt_error',
    edit: once(c2s('handshake', HandshakeType.finished), () => [
      { type: ContentType.handshake, content: rawMessage(HandshakeType.finished, new Uint8Array(32)) },
    ]),
  },
  {
    // RFC 8446 §4: a handshake type nobody defined is an unexpected message.
    name: 'a handshake message of unknown type 99 after the handshake',
    detector: 'server',
    alert: 'unexpected_message',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [{ type: ContentType.handshake, content: rawMessage(99, []) }]),
  },
  // ---- Records ----
  {
    // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types"
    // and an Alert record holds exactly one alert; a zero-length Alert is an unexpected_message.
    name: 'a zero-length protected Alert record after the handshake',
    detector: 'server',
    alert: 'unexpected_message',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [{ type: ContentType.alert, content: new Uint8Array(0) }]),
  },
  {
    name: 'a zero-length Alert record in the clear instead of the ClientHello',
    detector: 'server',
    alert: 'unexpected_message',
    edit: once(c2s('plaintext', HandshakeType.client_hello), () => [
      rawRecord(ContentType.alert, new Uint8Array(0)),
    ]),
  },
  {
    name: 'a zero-length protected Alert record in the server flight',
    detector: 'client',
    alert: 'unexpected_message',
    edit: once(s2c('handshake'), () => [{ type: ContentType.alert, content: new Uint8Array(0) }]),
  },
  {
    name: 'a zero-length protected handshake record after the handshake',
    detector: 'server',
    alert: 'unexpected_message',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [{ type: ContentType.handshake, content: new Uint8Array(0) }]),
  },
  {
    name: 'control: a three-byte Alert record is a decode_error',
    detector: 'server',
    alert: 'decode_error',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [{ type: ContentType.alert, content: Uint8Array.of(2, 40, 0) }]),
  },
  {
    // RFC 8446 §5: "If a TLS implementation receives an unexpected record type, it MUST
    // terminate the connection with an "unexpected_message" alert."
    name: 'a record of unknown type 0x63 in the clear instead of the ClientHello',
    detector: 'server',
    alert: 'unexpected_message',
    edit: once(c2s('plaintext', HandshakeType.client_hello), () => [rawRecord(0x63, Uint8Array.of(1, 2, 3))]),
  },
  {
    name: 'a protected record whose inner type is unknown (0x63), after the handshake',
    detector: 'server',
    alert: 'unexpected_message',
    connected: true,
    clientWrites: 'x',
    edit: once(appDataFrom('c2s'), () => [{ type: 0x63, content: Uint8Array.of(1) }]),
  },
  {
    // RFC 8446 §5.1: "Handshake messages MUST NOT be interleaved with other record types."
    name: 'a close_notify between the two halves of the client Finished',
    detector: 'server',
    alert: 'unexpected_message',
    edit: once(c2s('handshake', HandshakeType.finished), (r) => {
      const fin = r.messages[r.messages.length - 1]!;
      return [
        { type: ContentType.handshake, content: fin.subarray(0, 10) },
        { type: ContentType.alert, content: Uint8Array.of(1, 0) },
        { type: ContentType.handshake, content: fin.subarray(10) },
      ];
    }),
  },
  // ---- ClientHello (RFC 8446 §4.1.2, §4.2, §D.5) ----
  {
    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given
    // extension block"; like OpenSSL and rustls we answer illegal_parameter.
    name: 'a ClientHello with two supported_groups extensions',
    detector: 'server',
    alert: 'illegal_parameter',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) =>
        withExtensions(ch, [...ch.extensions, raw(ExtensionType.supported_groups, [0, 2, 0, 0x1d])]),
      ),
    ),
  },
  {
    // RFC 8446 §4.2.8: two KeyShareEntry values for one group: "illegal_parameter".
    name: 'a ClientHello with two key shares for x25519',
    detector: 'server',
    alert: 'illegal_parameter',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) =>
        withExtensions(
          ch,
          ch.extensions.map((e) =>
            e.type === 'key_share' && 'clientShares' in e
              ? { type: 'key_share', clientShares: [e.clientShares[0]!, e.clientShares[0]!] }
              : e,
          ),
        ),
      ),
    ),
  },
  {
    // RFC 8446 §4.2.11: pre_shared_key "MUST be the last extension in the ClientHello ...
    // Servers MUST check that it is the last extension and otherwise fail the handshake with
    // an "illegal_parameter" alert."
    name: 'a ClientHello with pre_shared_key before another extension',
    detector: 'server',
    alert: 'illegal_parameter',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) => {
        const psk = raw(ExtensionType.pre_shared_key, [
          ...[0, 7, 0, 1, 0x41, 0, 0, 0, 0],
          ...[0, 33, 32, ...new Array<number>(32).fill(7)],
        ]);
        return withExtensions(ch, [psk, ...ch.extensions]);
      }),
    ),
  },
  {
    // RFC 8449 §4: "Endpoints MUST NOT send a "record_size_limit" extension with a value
    // smaller than 64. An endpoint MUST treat receipt of a smaller value as a fatal error and
    // generate an "illegal_parameter" alert."
    name: 'a ClientHello with record_size_limit 63',
    detector: 'server',
    alert: 'illegal_parameter',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) =>
        withExtensions(ch, [...ch.extensions, raw(ExtensionType.record_size_limit, [0, 63])]),
      ),
    ),
  },
  {
    // RFC 8446 §D.5: "Any endpoint receiving a Hello message with ClientHello.legacy_version
    // ... set to 0x0300 MUST abort the handshake with a "protocol_version" alert."
    name: 'a ClientHello with legacy_version 0x0300 (and TLS 1.3 in supported_versions)',
    detector: 'server',
    alert: 'protocol_version',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) => ({ ...ch, legacyVersion: 0x0300 })),
    ),
  },
  {
    // RFC 8446 §4.1.2: "If a TLS 1.3 ClientHello is received with any other value in this
    // field, the server MUST abort the handshake with an "illegal_parameter" alert."
    name: 'a ClientHello with compression methods [null, deflate]',
    detector: 'server',
    alert: 'illegal_parameter',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) => ({ ...ch, legacyCompressionMethods: Uint8Array.of(0, 1) })),
    ),
  },
  {
    // RFC 8446 §4.2.3 / §9.2: certificate authentication needs signature_algorithms;
    // "missing_extension".
    name: 'a ClientHello without signature_algorithms',
    detector: 'server',
    alert: 'missing_extension',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) =>
        withExtensions(
          ch,
          ch.extensions.filter((e) => e.type !== 'signature_algorithms'),
        ),
      ),
    ),
  },
  {
    // RFC 8446 §9.2: "If containing a "supported_groups" extension, it MUST also contain a
    // "key_share" extension, and vice versa."
    name: 'a ClientHello with key_share but without supported_groups',
    detector: 'server',
    alert: 'missing_extension',
    edit: once(
      c2s('plaintext', HandshakeType.client_hello),
      editClientHello((ch) =>
        withExtensions(
          ch,
          ch.extensions.filter((e) => e.type !== 'supported_groups'),
        ),
      ),
    ),
  },
];

function scenario(c: Pick<Case, 'edit' | 'clientWrites'>): Scenario {
  return {
    crypto,
    now: NOW,
    client: { serverName: 'stepwire.test', verifier: pki.serverVerifier() },
    server: { signer: pki.signer(pki.leaf) },
    edit: c.edit(),
    ...(c.clientWrites ? { clientWrites: Buffer.from(c.clientWrites) } : {}),
  };
}
const other = (side: 'client' | 'server') => (side === 'client' ? 'server' : 'client');

describe.each(CASES)('$name', (c) => {
  it(`machines: the ${c.detector} sends ${c.alert}`, () => {
    const r = runMachines(scenario(c));
    const det = r.events[c.detector];
    expect(firstError(det)).toMatchObject({ alertName: c.alert, sent: true });
    expect(completed(det)).toBe(c.connected === true);
    const dir = c.detector === 'client' ? 'c2s' : 's2c';
    const alerts = r.mitm.seen.filter((x) => x.dir === dir && x.type === ContentType.alert);
    expect(alerts.map((x) => [...x.content])).toEqual([[2, AlertDescription[c.alert]]]);
    expect(firstError(r.events[other(c.detector)])).toMatchObject({ alertName: c.alert, sent: false });
  });
});

describe('the alert for a ParseError (RFC 8446 §6.2)', () => {
  it('decode_error by default; the fields the RFCs name get their own alert', () => {
    expect(alertForParseError({ field: 'client_hello.cipher_suites', reason: 'odd length' })).toBe(
      AlertDescription.decode_error,
    );
    expect(alertForParseError({ field: 'key_update.request_update', reason: 'invalid value 2' })).toBe(
      AlertDescription.illegal_parameter,
    );
    expect(alertForParseError({ field: 'record.type', reason: 'unknown content type 99' })).toBe(
      AlertDescription.unexpected_message,
    );
    expect(
      alertForParseError({ field: 'record.length', reason: '16385 exceeds 2^14 (record_overflow)' }),
    ).toBe(AlertDescription.record_overflow);
  });
});

describe('empty writes make no records (RFC 8446 §5.1; peers expect close_notify next)', () => {
  it('machines: send() of zero bytes returns no bytes', () => {
    const r = runMachines(scenario({ edit: () => () => undefined }));
    expect(r.client.isConnected).toBe(true);
    expect(r.client.send(new Uint8Array(0), NOW).data).toEqual([]);
    expect(r.server.send(new Uint8Array(0), NOW).data).toEqual([]);
  });

  it("sockets: write(''), a response, write(Buffer.alloc(0)) and end(): one data record, then close_notify", async () => {
    const mitm = new Mitm(crypto, undefined);
    const [a, b] = nodePairs((dir, bytes) => mitm.forward(dir, bytes));
    const now = () => NOW;
    const sc = scenario({ edit: () => () => undefined });
    const client = new TlsSocket(a, new TlsClient({ ...sc.client, crypto, keyLog: mitm.clientKeyLog }), {
      now,
    });
    const server = new TlsSocket(b, new TlsServer({ ...sc.server, crypto, keyLog: mitm.serverKeyLog }), {
      now,
    });
    server.once('data', () => {
      server.write('');
      server.write('pong');
      server.write(Buffer.alloc(0));
      server.end();
    });
    const got: Buffer[] = [];
    client.on('data', (d: Buffer) => got.push(d));
    const ended = new Promise<void>((resolve) => client.on('end', resolve));
    client.startHandshake();
    client.write('ping');
    await ended;
    client.destroy();
    server.destroy();
    expect(Buffer.concat(got).toString()).toBe('pong');
    const after = mitm.seen.filter((x) => x.dir === 's2c' && x.epoch === 'application');
    // NewSessionTicket, the one data record, close_notify: no zero-length application_data.
    expect(after.map((x) => [x.type, x.content.length])).toEqual([
      [ContentType.handshake, after[0]?.content.length],
      [ContentType.application_data, 4],
      [ContentType.alert, 2],
    ]);
  });
});

describe('records ahead of a bad header are answered first', () => {
  it('the client Finished and a record of unknown type in one read: NewSessionTicket, then the alert', () => {
    const r = runMachines(
      scenario({
        edit: once(c2s('handshake', HandshakeType.finished), (x) => [
          { raw: x.record },
          rawRecord(0x63, Uint8Array.of(1)),
        ]),
      }),
    );
    expect(completed(r.events.server)).toBe(true);
    expect(firstError(r.events.server)).toMatchObject({ alertName: 'unexpected_message', sent: true });
    const out = r.mitm.seen.filter((x) => x.dir === 's2c' && x.epoch === 'application');
    expect(
      out.map((x) =>
        x.type === ContentType.alert ? 'alert' : has(x, HandshakeType.new_session_ticket) ? 'ticket' : x.type,
      ),
    ).toEqual(['ticket', 'alert']);
  });
});
