/**
 * The Illustrated TLS 1.3 Connection (tls13.xargs.org): recompute every secret from the
 * x25519 keys and the transcript, compare with the capture's NSS key log, and decrypt and
 * re-encrypt every protected record of the capture byte for byte. Runs once per provider.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { concatBytes, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { ContentType, NamedGroup } from '../src/codec/common.ts';
import { findExtension } from '../src/codec/extensions.ts';
import {
  type ClientHello,
  decodeHandshake,
  encodeHandshake,
  HandshakeReassembler,
} from '../src/codec/handshake.ts';
import { decodeTLSPlaintext, encodeTLSPlaintext, RecordReader } from '../src/codec/record.ts';
import { keyLogLine } from '../src/keylog.ts';
import { CIPHER_SUITES, finishedVerifyData, KeySchedule, Transcript } from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { PROVIDERS } from './providers.ts';

const dir = join(import.meta.dirname, 'vectors/illustrated-tls13');
const cap = (name: string) => new Uint8Array(readFileSync(join(dir, 'caps', name)));
/** The raw 32-byte key at the end of a PKCS#8 or SPKI x25519 PEM. */
const pemKey = (name: string) => {
  const b64 = readFileSync(join(dir, name), 'utf8').replace(/-----[^-]+-----|\s/g, '');
  return new Uint8Array(Buffer.from(b64, 'base64')).subarray(-32);
};
const keylog = readFileSync(join(dir, 'keylog.txt'), 'utf8').trim().split('\n');
const logged = (label: string) => {
  const line = keylog.find((l) => l.startsWith(`${label} `));
  if (!line) throw new Error(`no ${label} in keylog.txt`);
  return line.split(' ')[2]!;
};
const hex = toHex;

/** The handshake messages inside a decrypted record (content without the type byte). */
const inner = (name: string) => {
  const b = cap(name);
  return { content: b.subarray(0, b.length - 1), type: b[b.length - 1]! };
};

describe.each(PROVIDERS)('The Illustrated TLS 1.3 Connection ($name)', (c) => {
  const suite = CIPHER_SUITES.get(0x1302)!;
  const clientHello = cap('clienthello').subarray(5);
  const serverHello = cap('serverhello').subarray(5);

  it('re-encodes the plaintext records and hellos byte for byte', () => {
    for (const name of ['clienthello', 'serverhello', 'serverccs', 'clientccs']) {
      const rec = cap(name);
      expect(hex(encodeTLSPlaintext(decodeTLSPlaintext(rec)))).toBe(hex(rec));
    }
    expect(decodeTLSPlaintext(cap('clientccs')).type).toBe(ContentType.change_cipher_spec);
    const ch = decodeHandshake(clientHello) as ClientHello;
    expect(hex(encodeHandshake(ch))).toBe(hex(clientHello));
    expect(findExtension(ch.extensions, 'server_name')?.hostName).toBe('example.ulfheim.net');
    const sh = decodeHandshake(serverHello);
    expect(hex(encodeHandshake(sh))).toBe(hex(serverHello));
    expect(sh.msgType === 'server_hello' && sh.cipherSuite).toBe(0x1302);
    expect(sh.msgType === 'server_hello' && findExtension(sh.extensions, 'key_share')).toEqual({
      type: 'key_share',
      serverShare: { group: NamedGroup.x25519, keyExchange: pemKey('server-ephemeral-public.key') },
    });
  });

  it('recomputes every secret in the key log and decrypts and re-encrypts every record', () => {
    const clientPriv = pemKey('client-ephemeral-private.key');
    const serverPriv = pemKey('server-ephemeral-private.key');
    expect(hex(c.generateKeyPair('x25519', clientPriv).publicKey)).toBe(
      hex(pemKey('client-ephemeral-public.key')),
    );
    expect(hex(c.generateKeyPair('x25519', serverPriv).publicKey)).toBe(
      hex(pemKey('server-ephemeral-public.key')),
    );
    const shared = c.sharedSecret('x25519', clientPriv, pemKey('server-ephemeral-public.key'));
    expect(hex(c.sharedSecret('x25519', serverPriv, pemKey('client-ephemeral-public.key')))).toBe(
      hex(shared),
    );

    const ch = decodeHandshake(clientHello) as ClientHello;
    const lines: string[] = [];
    const ks = new KeySchedule(c, 'sha384');
    ks.deriveEarlySecret();
    ks.deriveHandshakeSecret(shared);
    const t = new Transcript();
    t.add(clientHello);
    t.add(serverHello);
    const cHs = ks.clientHandshakeTrafficSecret(t.hash(c, 'sha384'));
    const sHs = ks.serverHandshakeTrafficSecret(t.hash(c, 'sha384'));
    lines.push(keyLogLine('SERVER_HANDSHAKE_TRAFFIC_SECRET', ch.random, sHs));
    lines.push(keyLogLine('CLIENT_HANDSHAKE_TRAFFIC_SECRET', ch.random, cHs));
    expect(hex(sHs)).toBe(logged('SERVER_HANDSHAKE_TRAFFIC_SECRET'));
    expect(hex(cHs)).toBe(logged('CLIENT_HANDSHAKE_TRAFFIC_SECRET'));

    // The server's handshake flight: one record per message, sequence numbers 0..3.
    const serverHs = new RecordProtection(c, suite, sHs);
    const sealer = new RecordProtection(c, suite, sHs);
    const names = [
      ['serverencextensions', 'serverextensions'],
      ['serverenccert', 'servercert'],
      ['serverenccertverify', 'servercertverify'],
      ['serverencfinished', 'serverfinished'],
    ] as const;
    const flight: Uint8Array[] = [];
    for (const [enc, plain] of names) {
      const want = inner(plain);
      const got = serverHs.open(cap(enc));
      expect(got.type).toBe(ContentType.handshake);
      expect(hex(got.content)).toBe(hex(want.content));
      expect(hex(sealer.seal(want.type, want.content))).toBe(hex(cap(enc)));
      const msgs = new HandshakeReassembler().push(got.content);
      expect(msgs.length).toBe(1);
      const m = decodeHandshake(msgs[0]!);
      expect(hex(encodeHandshake(m))).toBe(hex(got.content));
      flight.push(got.content);
    }
    const [ee, cert, cv, sFin] = flight as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    t.add(ee);
    t.add(cert);
    t.add(cv);
    expect(hex(finishedVerifyData(c, 'sha384', sHs, t.hash(c, 'sha384')))).toBe(hex(sFin.subarray(4)));
    t.add(sFin);

    ks.deriveMasterSecret();
    const th = t.hash(c, 'sha384');
    const cAp = ks.clientApplicationTrafficSecret0(th);
    const sAp = ks.serverApplicationTrafficSecret0(th);
    const exporter = ks.exporterMasterSecret(th);
    lines.push(keyLogLine('EXPORTER_SECRET', ch.random, exporter));
    lines.push(keyLogLine('SERVER_TRAFFIC_SECRET_0', ch.random, sAp));
    lines.push(keyLogLine('CLIENT_TRAFFIC_SECRET_0', ch.random, cAp));
    expect(lines).toEqual(keylog);

    // The client's Finished, under its handshake key.
    const cFin = inner('clientfinished');
    expect(hex(finishedVerifyData(c, 'sha384', cHs, th))).toBe(hex(cFin.content.subarray(4)));
    expect(hex(new RecordProtection(c, suite, cHs).seal(cFin.type, cFin.content))).toBe(
      hex(cap('clientencfinished')),
    );
    expect(hex(new RecordProtection(c, suite, cHs).open(cap('clientencfinished')).content)).toBe(
      hex(cFin.content),
    );

    // Application epoch: the server sends two tickets and "pong", the client "ping".
    const sOpen = new RecordProtection(c, suite, sAp);
    const sSeal = new RecordProtection(c, suite, sAp);
    for (const [enc, plain] of [
      ['serverencticket1', 'serverticket1'],
      ['serverencticket2', 'serverticket2'],
      ['serverencdata', 'serverdata'],
    ] as const) {
      const want = inner(plain);
      const got = sOpen.open(cap(enc));
      expect([got.type, hex(got.content)]).toEqual([want.type, hex(want.content)]);
      expect(hex(sSeal.seal(want.type, want.content))).toBe(hex(cap(enc)));
    }
    expect(new TextDecoder().decode(inner('serverdata').content)).toBe('pong');
    const ticket = decodeHandshake(inner('serverticket1').content);
    expect(ticket.msgType).toBe('new_session_ticket');
    expect(hex(encodeHandshake(ticket))).toBe(hex(inner('serverticket1').content));
    const ping = inner('clientdata');
    expect(hex(new RecordProtection(c, suite, cAp).seal(ping.type, ping.content))).toBe(
      hex(cap('clientencdata')),
    );
    expect(
      new TextDecoder().decode(new RecordProtection(c, suite, cAp).open(cap('clientencdata')).content),
    ).toBe('ping');
  });

  it('cuts the server flight, as one TCP stream, into the same records', () => {
    const stream = concatBytes(
      cap('serverhello'),
      cap('serverccs'),
      cap('serverencextensions'),
      cap('serverenccert'),
      cap('serverenccertverify'),
      cap('serverencfinished'),
    );
    const rr = new RecordReader();
    const records: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += 7) records.push(...rr.push(stream.subarray(i, i + 7)));
    expect(records.map(hex)).toEqual(
      [
        'serverhello',
        'serverccs',
        'serverencextensions',
        'serverenccert',
        'serverenccertverify',
        'serverencfinished',
      ].map((n) => hex(cap(n))),
    );
  });
});
