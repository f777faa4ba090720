/**
 * Both machines replay RFC 8448 §6 (client authentication) and §7 (compatibility mode)
 * byte for byte. Randomized values (randoms, key shares, ECDSA and RSA-PSS signatures) are
 * the RFC's, handed in through a scripted provider and signers that only return the RFC's
 * signature for exactly the content the RFC signed; the peers' signatures are verified by
 * OpenSSL (node:crypto).
 */
import { constants, verify, X509Certificate } from 'node:crypto';
import { concatBytes, toHex, utf8 } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { CertificateSigner, CertificateVerifier } from '../src/auth.ts';
import { TlsClient } from '../src/client.ts';
import type { Extension } from '../src/codec/extensions.ts';
import { type ClientHello, decodeHandshake } from '../src/codec/handshake.ts';
import type { TlsEvent } from '../src/connection.ts';
import { TlsServer } from '../src/server.ts';
import { RFC_GROUPS, RFC_SCHEMES, scripted } from './helpers/rfc8448.ts';
import { PROVIDERS } from './providers.ts';
import * as clientauth from './vectors/rfc8448/clientauth.ts';
import * as compat from './vectors/rfc8448/compat.ts';
import { h } from './vectors/rfc8448/hex.ts';
import * as simple from './vectors/rfc8448/simple.ts';

const hex = toHex;

const certOf = (msg: Uint8Array) => {
  const m = decodeHandshake(msg);
  if (m.msgType !== 'certificate') throw new Error('not a Certificate');
  return m.certificateList[0]!.certData;
};
const signatureOf = (msg: Uint8Array) => {
  const m = decodeHandshake(msg);
  if (m.msgType !== 'certificate_verify') throw new Error('not a CertificateVerify');
  return m.signature;
};
const signedContent = (side: 'server' | 'client', transcriptHash: string) =>
  concatBytes(
    new Uint8Array(64).fill(0x20),
    utf8(`TLS 1.3, ${side} CertificateVerify`),
    Uint8Array.of(0),
    h(transcriptHash),
  );

/** Returns the RFC's signature for the RFC's content, and a useless one for anything else. */
function rfcSigner(
  chain: Uint8Array,
  scheme: number,
  content: Uint8Array,
  signature: Uint8Array,
): CertificateSigner {
  return {
    certificateChain: [chain],
    signatureSchemes: [scheme],
    sign: (s, c) => (s === scheme && hex(c) === hex(content) ? signature : new Uint8Array(signature.length)),
  };
}

/** Pins one certificate and checks signatures with OpenSSL; the RFC's certificates are expired, so no date check. */
function pinned(der: Uint8Array, serverName?: string): CertificateVerifier {
  return {
    signatureSchemes: RFC_SCHEMES,
    verifyChain(chain, ctx) {
      expect(hex(chain[0]!)).toBe(hex(der));
      expect(ctx.serverName).toBe(serverName);
    },
    verifySignature(leaf, scheme, content, signature) {
      const key = new X509Certificate(Buffer.from(leaf)).publicKey;
      if (scheme === 0x0804)
        return verify(
          'sha256',
          content,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
          signature,
        );
      if (scheme === 0x0403) return verify('sha256', content, key, signature);
      return false;
    },
  };
}

/** NSS's ClientHello for §6 and §7: renegotiation_info added, its order. */
function nssOrder(ch: ClientHello): ClientHello {
  const get = (t: Extension['type']) => ch.extensions.find((e) => e.type === t)!;
  const exts: Extension[] = [
    get('server_name'),
    { type: 'raw', code: 0xff01, data: Uint8Array.of(0) },
    get('supported_groups'),
    get('key_share'),
    get('supported_versions'),
    get('signature_algorithms'),
    get('psk_key_exchange_modes'),
    get('record_size_limit'),
  ];
  return { ...ch, extensions: exts };
}

const done = (events: TlsEvent[]) =>
  events.find((e): e is Extract<TlsEvent, { type: 'handshake-complete' }> => e.type === 'handshake-complete');
const randomOf = (record: Uint8Array) => record.subarray(11, 43);

describe.each(PROVIDERS)('RFC 8448 §6 and §7 replayed by our machines ($name)', (c) => {
  const serverCertEc = certOf(clientauth.serverFlight[2]!);
  const clientCert = certOf(clientauth.clientFlight[0]!);
  const serverCertRsa = certOf(simple.certificate);

  it('§6 server: asks for, receives and checks a client certificate', () => {
    const server = new TlsServer({
      crypto: scripted(c, [randomOf(clientauth.serverHelloRecord)], clientauth.serverPrivate),
      signer: rfcSigner(
        serverCertEc,
        0x0403,
        signedContent('server', '859eaf14bd760766c74a398668367bc3a32687ce5a598b4383726ab82a911e26'),
        signatureOf(clientauth.serverFlight[3]!),
      ),
      clientAuth: { verifier: pinned(clientCert), required: true },
      ticketKey: new Uint8Array(32),
      ticketsToSend: 0,
      groups: RFC_GROUPS,
    });
    const flight = server.receive(clientauth.clientHelloRecord, 0);
    expect(flight.data.map(hex)).toEqual([
      hex(clientauth.serverHelloRecord),
      hex(clientauth.serverHandshakeRecord),
    ]);
    expect(server.state).toBe('WAIT_CERT');
    const fin = server.receive(clientauth.clientHandshakeRecord, 0);
    expect(done(fin.events)?.peerCertificates[0]).toEqual(clientCert);
    expect(server.receive(clientauth.clientAlertRecord, 0).events).toEqual([{ type: 'peer-closed' }]);
    expect(server.close(0).data.map(hex)).toEqual([hex(clientauth.serverAlertRecord)]);
  });

  it('§6 client: answers the CertificateRequest with its certificate', () => {
    const client = new TlsClient({
      crypto: scripted(c, [randomOf(clientauth.clientHelloRecord)], clientauth.clientPrivate),
      serverName: 'server',
      verifier: pinned(serverCertEc, 'server'),
      groups: RFC_GROUPS,
      cipherSuites: [0x1301, 0x1303, 0x1302],
      customizeHello: nssOrder,
      certificate: rfcSigner(
        clientCert,
        0x0804,
        signedContent('client', '44026ef3331bc864da1c08ee32e196d93cc2c5d487e47e957d980e7c3d801b9a'),
        signatureOf(clientauth.clientFlight[1]!),
      ),
    });
    expect(client.start(0).data.map(hex)).toEqual([hex(clientauth.clientHelloRecord)]);
    const flight = client.receive(
      concatBytes(clientauth.serverHelloRecord, clientauth.serverHandshakeRecord),
      0,
    );
    expect(flight.data.map(hex)).toEqual([hex(clientauth.clientHandshakeRecord)]);
    expect(done(flight.events)?.peerCertificates[0]).toEqual(serverCertEc);
    expect(client.close(0).data.map(hex)).toEqual([hex(clientauth.clientAlertRecord)]);
  });

  it('§7 server: change_cipher_spec after the ServerHello for a compatibility-mode client', () => {
    const server = new TlsServer({
      crypto: scripted(c, [randomOf(compat.serverHelloRecord)], compat.serverPrivate),
      signer: rfcSigner(
        serverCertRsa,
        0x0804,
        signedContent('server', 'f6f6f65e8dadcbfc7dfd3a7841469b0f9889ba468c9ff9da0ae5ca4dea8b50e4'),
        signatureOf(compat.serverFlight[2]!),
      ),
      ticketKey: new Uint8Array(32),
      ticketsToSend: 0,
      groups: RFC_GROUPS,
    });
    const flight = server.receive(compat.clientHelloRecord, 0);
    expect(hex(concatBytes(...flight.data))).toBe(
      hex(concatBytes(compat.serverHelloRecord, compat.serverFlightRecords)),
    );
    expect(flight.data.length).toBe(3);
    expect(done(server.receive(compat.clientFlightRecords, 0).events)).toBeDefined();
    expect(server.counters.get('ccs.ignored')).toBe(1);
    expect(server.receive(compat.clientAlertRecord, 0).events).toEqual([{ type: 'peer-closed' }]);
    expect(server.close(0).data.map(hex)).toEqual([hex(compat.serverAlertRecord)]);
  });

  it('§7 client: session id, then change_cipher_spec before its Finished', () => {
    const hello = decodeHandshake(compat.clientHelloRecord.subarray(5));
    if (hello.msgType !== 'client_hello') throw new Error('not a ClientHello');
    const client = new TlsClient({
      crypto: scripted(c, [hello.random, hello.legacySessionId], compat.clientPrivate),
      serverName: 'server',
      verifier: pinned(serverCertRsa, 'server'),
      groups: RFC_GROUPS,
      cipherSuites: [0x1301, 0x1303, 0x1302],
      customizeHello: nssOrder,
      compatibilityMode: true,
    });
    expect(client.start(0).data.map(hex)).toEqual([hex(compat.clientHelloRecord)]);
    const flight = client.receive(concatBytes(compat.serverHelloRecord, compat.serverFlightRecords), 0);
    expect(hex(concatBytes(...flight.data))).toBe(hex(compat.clientFlightRecords));
    expect(done(flight.events)).toBeDefined();
    expect(client.counters.get('ccs.ignored')).toBe(1);
    expect(client.close(0).data.map(hex)).toEqual([hex(compat.clientAlertRecord)]);
  });
});
