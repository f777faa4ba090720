/** The endpoint hands each connection the congestion controller and pacing its caller asked for. */
import { pki } from '@stepwire/tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

describe('QuicEndpoint connection options', () => {
  it('connect and accept pass congestion through (default CUBIC)', () => {
    const clientTls = quicClientTls(creds.ca.certificatePem, 'hq');
    const server = new QuicEndpoint({
      server: {
        tls: quicServerTls(creds.leaf, 'hq'),
        congestion: 'newreno',
        pacing: false,
      },
    });
    const client = new QuicEndpoint({});
    const now = Date.now();
    const reno = client.connect(
      { address: '127.0.0.1', port: 4433 },
      { tls: clientTls, congestion: 'newreno' },
      now,
    );
    const cubic = client.connect({ address: '127.0.0.1', port: 4433 }, { tls: clientTls }, now);
    expect(reno.stats().congestion).toBe('newreno');
    expect(cubic.stats().congestion).toBe('cubic');
    const first = client.pollTransmit(now);
    expect(first).toBeDefined();
    server.handle(first!.datagram, { address: '127.0.0.1', port: 50_000 }, now);
    const accepted = server.accept();
    expect(accepted?.stats().congestion).toBe('newreno');
  });
});
