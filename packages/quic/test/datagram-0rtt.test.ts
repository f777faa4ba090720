import { SIM_EPOCH } from '@stepwire/sim';
import { AntiReplayCache, pki } from '@stepwire/tls';
import { Prng, utf8 } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent, TransportConfig } from '../src/connection/types.ts';
import type { QuicServerConfig } from '../src/endpoint/endpoint.ts';
import { TransportErrorCode } from '../src/errors.ts';
import { endpointPair } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

/**
 * DATAGRAM frames in 0-RTT (RFC 9221 §3): a resuming client that remembered the server's
 * max_datagram_frame_size may send DATAGRAM frames in 0-RTT packets; a server that accepts
 * the early data must not lower it, and a client that sees it lowered closes with
 * PROTOCOL_VIOLATION. Real TLS machines in QUIC mode, two endpoints on a virtual clock.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});

const ALPN = 'stepwire-echo';
const sAddr = { address: '198.18.0.2', port: 443 };
const cAddr = { address: '198.18.0.1', port: 1111 };

type Ticket = Extract<QuicConnectionEvent, { type: 'session-ticket' }>;

function setup(acceptEarly: boolean, seed: number) {
  const ticketKey = new Prng(seed + 100).bytes(32);
  // With no room in the anti-replay store every early data attempt is refused (RFC 8446 §8).
  const antiReplay = new AntiReplayCache(acceptEarly ? 100 : 0);
  const serverConfig: QuicServerConfig = {
    transport: { maxDatagramFrameSize: 1200 },
    tls: quicServerTls(creds.leaf, ALPN, { ticketKey, antiReplay, maxEarlyData: 0xffffffff }),
  };
  const { client, server, lines } = endpointPair(seed, serverConfig);
  let now = 0;
  const serverEvents: QuicConnectionEvent[] = [];
  const ferry = (until: () => boolean) => {
    for (let i = 0; i < 400 && !until(); i++) {
      for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now))
        server.handle(t.datagram, cAddr, now);
      for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now))
        client.handle(t.datagram, sAddr, now);
      for (const c of server.connections)
        for (let e = c.pollEvent(); e; e = c.pollEvent()) serverEvents.push(e);
      now += 1;
      for (const ep of [client, server])
        if ((ep.pollTimeout() ?? Number.POSITIVE_INFINITY) <= now) ep.handleTimeout(now);
    }
  };
  const transport: Partial<TransportConfig> = { maxDatagramFrameSize: 1200 };
  const clientTls = (session?: Ticket['ticket']) =>
    quicClientTls(creds.ca.certificatePem, ALPN, session ? { session, earlyData: true } : {});
  /** A first connection, for its ticket and the parameters to remember. */
  const firstTicket = (): Ticket => {
    const first = client.connect(sAddr, { tls: clientTls(), transport }, now);
    let ticket: Ticket | undefined;
    ferry(() => {
      for (let e = first.pollEvent(); e; e = first.pollEvent()) if (e.type === 'session-ticket') ticket = e;
      return ticket !== undefined;
    });
    if (!ticket) throw new Error('no ticket');
    return ticket;
  };
  const resume = (ticket: Ticket, remembered = ticket.transportParameters): QuicConnection =>
    client.connect(
      sAddr,
      {
        tls: clientTls(ticket.ticket),
        transport,
        ...(remembered ? { earlyTransportParameters: remembered } : {}),
      },
      now,
    );
  return { client, server, serverConfig, ferry, lines, serverEvents, firstTicket, resume };
}

function datagrams(events: QuicConnectionEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'datagram' ? [new TextDecoder().decode(e.data)] : []));
}

describe('DATAGRAM in 0-RTT (RFC 9221 §3)', () => {
  it('the remembered max_datagram_frame_size lets a DATAGRAM go in 0-RTT; the server accepting early data reads it', () => {
    const w = setup(true, 21);
    const ticket = w.firstTicket();
    expect(ticket.transportParameters?.max_datagram_frame_size).toBe(1200);
    const second = w.resume(ticket);
    // Before any packet left: only 0-RTT can carry it.
    expect(second.maxDatagramPayload).toBeGreaterThan(1000);
    second.sendDatagram(utf8('early datagram'));
    const clientEvents: QuicConnectionEvent[] = [];
    w.ferry(() => {
      for (let e = second.pollEvent(); e; e = second.pollEvent()) clientEvents.push(e);
      return second.isHandshakeConfirmed && datagrams(w.serverEvents).length > 0;
    });
    expect(w.lines.some((l) => l.startsWith('A out 0-RTT') && l.includes('DATAGRAM'))).toBe(true);
    expect(w.lines.some((l) => l.startsWith('B in 0-RTT') && l.includes('DATAGRAM'))).toBe(true);
    expect(datagrams(w.serverEvents)).toEqual(['early datagram']);
    expect(clientEvents).toContainEqual({ type: 'connected', alpn: ALPN, earlyData: 'accepted' });
    expect(second.state).toBe('established');
  });

  it('refused early data: the 0-RTT DATAGRAM is lost and not sent again, the stream data is (RFC 9221 §5.2)', () => {
    const w = setup(false, 22);
    const second = w.resume(w.firstTicket());
    second.sendDatagram(utf8('early datagram'));
    const id = second.openStream('bidi');
    second.write(id, utf8('early stream'), true);
    const got: string[] = [];
    w.ferry(() => {
      for (const e of w.serverEvents.splice(0)) {
        if (e.type === 'stream-data') got.push(new TextDecoder().decode(e.data));
        if (e.type === 'datagram') got.push(`datagram:${new TextDecoder().decode(e.data)}`);
      }
      return second.isHandshakeConfirmed && got.includes('early stream');
    });
    expect(w.lines.some((l) => l.startsWith('A out 0-RTT') && l.includes('DATAGRAM'))).toBe(true);
    expect(got).toEqual(['early stream']);
    expect(second.counters.get('quic.0rtt.rejected')).toBe(1);
    expect(w.lines.filter((l) => l.startsWith('A out') && l.includes('DATAGRAM'))).toHaveLength(1);
  });

  it('without a remembered max_datagram_frame_size no DATAGRAM can be queued before the handshake', () => {
    const w = setup(true, 23);
    const ticket = w.firstTicket();
    const { max_datagram_frame_size: _, ...withoutDatagrams } = ticket.transportParameters ?? {};
    const second = w.resume(ticket, withoutDatagrams);
    expect(second.maxDatagramPayload).toBe(0);
    expect(() => second.sendDatagram(utf8('x'))).toThrow(/RFC 9221 §3/);
    // Once the handshake brings the server's parameters, it can.
    w.ferry(() => second.isHandshakeConfirmed);
    expect(second.maxDatagramPayload).toBeGreaterThan(1000);
  });

  it('a server that accepts early data but lowers max_datagram_frame_size: the client closes with PROTOCOL_VIOLATION', () => {
    const w = setup(true, 24);
    const ticket = w.firstTicket();
    w.serverConfig.transport = { maxDatagramFrameSize: 500 };
    const second = w.resume(ticket);
    second.sendDatagram(utf8('early datagram'));
    w.ferry(() => second.state !== 'handshaking');
    expect(second.closeError).toMatchObject({
      source: 'local',
      code: TransportErrorCode.PROTOCOL_VIOLATION,
    });
    expect(second.closeError?.reason).toMatch(/max_datagram_frame_size 500 below the 1200/);
  });

  it('the same lowered value with early data refused is no violation: nothing was sent under it', () => {
    const w = setup(false, 25);
    const ticket = w.firstTicket();
    w.serverConfig.transport = { maxDatagramFrameSize: 500 };
    const second = w.resume(ticket);
    second.sendDatagram(utf8('early datagram'));
    w.ferry(() => second.isHandshakeConfirmed);
    expect(second.state).toBe('established');
    expect(second.peerParams?.max_datagram_frame_size).toBe(500);
  });
});
