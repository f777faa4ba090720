/**
 * Our TLS (the tls package in QUIC mode, RFC 9001) as the tests set it up: a client that
 * verifies stepwire.test against the test CA, a server with the test leaf certificate, each
 * offering one ALPN protocol; `extra` for what a test changes (suites, tickets, 0-RTT).
 */
import { certificateSigner, certificateVerifier } from '@stepwire/tls';
import {
  createQuicTlsClient,
  createQuicTlsServer,
  type QuicTlsClientOptions,
  type QuicTlsServerOptions,
} from '../../src/tls/handshake.ts';
import type { QuicTls } from '../../src/tls/types.ts';

export function quicClientTls(
  caPem: string,
  alpn: string,
  extra: Partial<Omit<QuicTlsClientOptions, 'transportParameters'>> = {},
): (transportParameters: Uint8Array) => QuicTls {
  return (transportParameters) =>
    createQuicTlsClient({
      serverName: 'stepwire.test',
      verifier: certificateVerifier({ ca: caPem }),
      alpnProtocols: [alpn],
      transportParameters,
      ...extra,
    });
}

export function quicServerTls(
  leaf: Parameters<typeof certificateSigner>[0],
  alpn: string,
  extra: Partial<Omit<QuicTlsServerOptions, 'transportParameters'>> = {},
): (transportParameters: Uint8Array) => QuicTls {
  return (transportParameters) =>
    createQuicTlsServer({
      signer: certificateSigner(leaf),
      alpnProtocols: [alpn],
      transportParameters,
      ...extra,
    });
}
