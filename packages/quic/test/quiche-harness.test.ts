/**
 * The quiche oracle itself (test/support/quiche.ts): two quiche peers in memory handshake
 * with a certificate from our PKI and move a stream both ways. If this fails, the interop
 * tests that pair quiche with our endpoint would fail for the harness's sake, not ours.
 */
import { pki } from '@stepwire/tls';
import { describe, expect, it } from 'vitest';
import { QuichePeer } from './support/quiche.ts';

describe('quiche harness', () => {
  it('two quiche peers handshake over our certificate and echo a stream', () => {
    const { ca, leaf } = pki.createStepwireCredentials(new Date());
    const client = new QuichePeer({ role: 'client', caPem: ca.certificatePem, alpn: ['hq-interop'] });
    const server = new QuichePeer({
      role: 'server',
      certPem: leaf.certificatePem,
      keyPem: leaf.privateKeyPem,
      alpn: ['hq-interop'],
    });
    const ferry = () => {
      for (const d of client.drain()) server.receive(d);
      for (const d of server.drain()) client.receive(d);
    };
    for (let i = 0; i < 5 && !(client.established && server.established); i++) ferry();
    expect(client.established && server.established).toBe(true);
    expect(client.alpn).toBe('hq-interop');
    const body = new Uint8Array(100_000).map((_, i) => i & 0xff);
    let sent = 0;
    let got = new Uint8Array(0);
    let fin = false;
    for (let i = 0; i < 200 && !fin; i++) {
      // quiche takes what its congestion window and flow control allow now.
      if (sent < body.length) sent += client.send(0, body.subarray(sent), true);
      ferry();
      for (const id of server.readable()) {
        const r = server.read(id);
        got = Buffer.concat([got, r.data]);
        fin ||= r.fin;
      }
    }
    expect(fin).toBe(true);
    expect(Buffer.from(got).equals(Buffer.from(body))).toBe(true);
    client.close(true, 0, 'done');
    ferry();
    expect(server.peerError()).toMatchObject({ isApp: true, errorCode: 0 });
  });
});
