/**
 * QuicTls over the tls package's own machines (RFC 9001 §4): `TlsClient` and `TlsServer`
 * run in their QUIC mode, so the handshake QUIC carries is the same code, the same state
 * table and the same checks as TLS over TCP — no second TLS implementation.
 */
import {
  TlsClient,
  type TlsClientOptions,
  type TlsConnection,
  type TlsOutput,
  TlsServer,
  type TlsServerOptions,
} from '@stepwire/tls';
import type { QuicTls, QuicTlsEvent } from './types.ts';

export interface QuicTlsClientOptions
  extends Omit<TlsClientOptions, 'quic' | 'earlyData' | 'compatibilityMode'> {
  /** Our transport parameters, encoded (encodeTransportParameters). */
  transportParameters: Uint8Array;
  /** Attempt 0-RTT with `session` when its ticket allows it (RFC 9001 §4.6.1). */
  earlyData?: boolean;
}

export interface QuicTlsServerOptions extends Omit<TlsServerOptions, 'quic'> {
  transportParameters: Uint8Array;
}

export function createQuicTlsClient(options: QuicTlsClientOptions): QuicTls {
  const { transportParameters, earlyData, ...tls } = options;
  const machine = new TlsClient({ ...tls, quic: { transportParameters, earlyData: earlyData ?? false } });
  return new Bridge('client', machine, (now) => machine.start(now));
}

export function createQuicTlsServer(options: QuicTlsServerOptions): QuicTls {
  const { transportParameters, ...tls } = options;
  const machine = new TlsServer({ ...tls, quic: { transportParameters } });
  return new Bridge('server', machine, () => ({ data: [], events: [] }));
}

class Bridge implements QuicTls {
  constructor(
    readonly role: 'client' | 'server',
    private readonly machine: TlsConnection,
    private readonly begin: (now: number) => TlsOutput,
  ) {}

  start(now: number): QuicTlsEvent[] {
    return translate(this.begin(now));
  }

  receive(level: 'initial' | 'handshake' | 'application', data: Uint8Array, now: number): QuicTlsEvent[] {
    return translate(this.machine.receiveCrypto(level, data, now));
  }
}

function translate(out: TlsOutput): QuicTlsEvent[] {
  const events: QuicTlsEvent[] = [];
  for (const e of out.events) {
    switch (e.type) {
      case 'quic-crypto':
        events.push({ type: 'crypto', level: e.level, data: e.data });
        break;
      case 'quic-secret':
        events.push({
          type: 'secret',
          level: e.level,
          direction: e.direction,
          secret: e.secret,
          cipherSuite: e.cipherSuite,
        });
        break;
      case 'handshake-complete':
        events.push({
          type: 'handshake-complete',
          ...(e.alpn !== undefined ? { alpn: e.alpn } : {}),
          // The machine refuses a handshake without them (RFC 9001 §8.2), so they are here.
          peerTransportParameters: e.quicTransportParameters ?? new Uint8Array(0),
          resumed: e.resumed,
          ...(e.earlyData !== undefined ? { earlyData: e.earlyData } : {}),
          peerCertificates: e.peerCertificates,
        });
        break;
      case 'session-ticket':
        events.push({ type: 'session-ticket', ticket: e.ticket });
        break;
      case 'error':
        // RFC 9001 §4.8: the QUIC layer closes with CONNECTION_CLOSE 0x0100 + alert.
        events.push({ type: 'error', alert: e.alert, reason: `${e.alertName}: ${e.reason}` });
        break;
      // early-data-status, key-update, data, peer-closed: not produced in QUIC mode, or
      // carried by handshake-complete (the 0-RTT outcome).
      default:
        break;
    }
  }
  return events;
}
