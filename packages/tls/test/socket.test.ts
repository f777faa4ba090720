/**
 * TlsSocket, the Duplex driver: our client socket against Node's TLS server with node:http
 * on top, and our two sockets against each other.
 */
import * as http from 'node:http';
import { duplexPair } from 'node:stream';
import * as tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { accept, connect, TlsError } from '../src/socket.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';

let id: TestIdentity;
beforeAll(() => {
  id = makeIdentity('stepwire.test', 'ec');
});

const readAll = (s: NodeJS.ReadableStream) =>
  new Promise<string>((resolve, reject) => {
    let out = '';
    s.on('data', (d: Buffer) => {
      out += d.toString();
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });

describe('TlsSocket', () => {
  it('carries node:http over our client to a Node TLS server', async () => {
    const [ours, theirs] = duplexPair();
    const serverTls = new tls.TLSSocket(theirs, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: id.certPem, key: id.keyPem, minVersion: 'TLSv1.3' }),
      ALPNProtocols: ['http/1.1'],
    });
    const app = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello from ${req.url} over ${(req.socket as tls.TLSSocket).getProtocol()}`);
    });
    app.emit('connection', serverTls);
    const socket = connect(ours, {
      serverName: 'stepwire.test',
      verifier: pinnedVerifier([id]),
      alpnProtocols: ['http/1.1'],
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(
        { createConnection: () => socket, path: '/stepwire', host: 'stepwire.test' },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(200);
    expect(await readAll(res)).toBe('hello from /stepwire over TLSv1.3');
    expect(socket.alpnProtocol).toBe('http/1.1');
    socket.destroy();
  });

  it('our client socket and our server socket: queued writes, echo, orderly close', async () => {
    const [a, b] = duplexPair();
    const server = accept(b, { signer: signerFor(id) });
    server.on('data', (d: Buffer) => server.write(Buffer.concat([Buffer.from('echo:'), d])));
    server.on('end', () => server.end());
    const client = connect(a, { serverName: 'stepwire.test', verifier: pinnedVerifier([id]) });
    // Written before the handshake completes: queued, then sent.
    client.write('early words');
    const secure = new Promise((r) => client.once('secure', r));
    const got = new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString())));
    await secure;
    expect(await got).toBe('echo:early words');
    const ekmClient = client.exportKeyingMaterial(16, 'EXPERIMENTAL-socket');
    expect(
      Buffer.from(ekmClient).equals(Buffer.from(server.exportKeyingMaterial(16, 'EXPERIMENTAL-socket'))),
    ).toBe(true);
    const ended = new Promise((r) => client.on('end', r));
    client.resume();
    client.end();
    await ended;
  });

  it('surfaces a failed handshake as a TlsError', async () => {
    const [a, b] = duplexPair();
    accept(b, { signer: signerFor(id) }).on('error', () => {});
    const client = connect(a, { serverName: 'wrong.test', verifier: pinnedVerifier([id]) });
    const err = await new Promise<Error>((r) => client.on('error', r));
    expect(err).toBeInstanceOf(TlsError);
    expect((err as TlsError).alert).toBe('bad_certificate');
  });
});
