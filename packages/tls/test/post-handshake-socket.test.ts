/**
 * Post-handshake client authentication (RFC 8446 §4.6.2) at the node:tls-shaped layer: a
 * server TlsSocket's requestCertificate() and its 'clientCertificate' event, our client socket
 * (postHandshakeAuth) answering, over an in-memory duplex pair.
 */
import { duplexPair } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { accept, connect, type TlsError } from '../src/socket.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';

let server: TestIdentity;
let client: TestIdentity;
beforeAll(() => {
  server = makeIdentity('stepwire.test', 'ec');
  client = makeIdentity('client.test', 'ed25519');
});

function pair(postHandshakeAuth: boolean) {
  const [a, b] = duplexPair();
  const s = accept(b, {
    signer: signerFor(server),
    postHandshakeAuth: { verifier: pinnedVerifier([client]) },
  });
  const c = connect(a, {
    serverName: 'stepwire.test',
    verifier: pinnedVerifier([server]),
    certificate: signerFor(client),
    postHandshakeAuth,
  });
  const secure = Promise.all([
    new Promise((r) => s.once('secure', r)),
    new Promise((r) => c.once('secure', r)),
  ]);
  return { s, c, secure };
}

describe('TlsSocket.requestCertificate', () => {
  it('emits the verified chain, and data flows after it', async () => {
    const { s, c, secure } = pair(true);
    await secure;
    const got = new Promise<readonly Uint8Array[]>((r) => s.once('clientCertificate', r));
    s.requestCertificate();
    expect((await got)[0]).toEqual(client.certDer);
    const data = new Promise<Buffer>((r) => s.once('data', r));
    c.write('after');
    expect((await data).toString()).toBe('after');
    c.destroy();
    s.destroy();
  });

  it('throws when the client did not offer post_handshake_auth, and on a client socket', async () => {
    const { s, c, secure } = pair(false);
    await secure;
    expect(() => s.requestCertificate()).toThrow(/post_handshake_auth/);
    expect(() => c.requestCertificate()).toThrow(/server sockets/);
    c.destroy();
    s.destroy();
  });

  it('a required certificate the client does not have fails both sockets with certificate_required', async () => {
    const [a, b] = duplexPair();
    const s = accept(b, {
      signer: signerFor(server),
      postHandshakeAuth: { verifier: pinnedVerifier([client]), required: true },
    });
    const c = connect(a, {
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([server]),
      postHandshakeAuth: true,
    });
    await Promise.all([new Promise((r) => s.once('secure', r)), new Promise((r) => c.once('secure', r))]);
    const serverError = new Promise<TlsError>((r) => s.once('error', r));
    const clientError = new Promise<TlsError>((r) => c.once('error', r));
    s.requestCertificate();
    expect(await serverError).toMatchObject({ alert: 'certificate_required', sentByUs: true });
    expect(await clientError).toMatchObject({ alert: 'certificate_required', sentByUs: false });
  });
});
