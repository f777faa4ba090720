import { Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { formatIpv6, ipv4Bytes, ipv6Bytes, preferredAddressParameter } from '../src/connection/preferred.ts';
import { decodeTransportParameters, encodeTransportParameters } from '../src/transport-parameters.ts';
import { simPair } from './support/sim-endpoints.ts';

/**
 * preferred_address (RFC 9000 §9.6) on the simulated network: the server advertises a
 * second address and a connection ID of sequence 1; after the handshake the client
 * validates that address with PATH_CHALLENGE and moves there; the server answers from it.
 */

async function run(
  preferred: 'port' | 'address' | undefined,
  seed: number,
  extra: { dropPreferred?: boolean; usePreferred?: boolean } = {},
) {
  const p = simPair({
    seed,
    impairments: { delay: 10 },
    ...(preferred ? { preferred } : {}),
    ...(extra.usePreferred === false ? { clientTransport: { usePreferredAddress: false } } : {}),
  });
  // Datagrams to the preferred address vanish (a firewall in front of it).
  if (extra.dropPreferred) {
    const s2 = p.server.sockets[1];
    if (s2) s2.removeAllListeners('message');
  }
  const peers: string[] = [];
  for (const [i, s] of p.server.sockets.entries())
    s.on('message', () => {
      if (!peers.includes(`${i}`)) peers.push(`${i}`);
    });
  const client = p.connect();
  const body = new Prng(seed).bytes(100_000);
  let wrote = false;
  let got = 0;
  let echoed = 0;
  const ok = await p.runUntil(() => {
    if (!wrote && client.isHandshakeConfirmed) {
      client.write(client.openStream('bidi'), body, true);
      p.flush();
      wrote = true;
    }
    for (const x of p.server.events.splice(0))
      if (x.e.type === 'stream-data') {
        got += x.e.data.length;
        x.conn.write(x.e.id, x.e.data, x.e.fin);
        p.flush();
      }
    echoed = p.client.events.reduce((n, x) => n + (x.e.type === 'stream-data' ? x.e.data.length : 0), 0);
    const settled =
      preferred === undefined ||
      extra.usePreferred === false ||
      client.counters.get('quic.path.preferred-address') + client.counters.get('quic.path.preferred-failed') >
        0;
    return echoed >= body.length && settled;
  }, 60_000);
  return { p, client, server: p.accepted[0], got, echoed, ok, peers, body };
}

describe('preferred_address (RFC 9000 §9.6)', () => {
  it('the server on two addresses: the client validates the preferred one and moves there; the transfer goes on', async () => {
    const r = await run('address', 1);
    expect(r.ok).toBe(true);
    expect(r.echoed).toBe(r.body.length);
    expect(r.client.remote).toEqual({ address: '198.18.1.2', port: 4433 });
    expect(r.client.counters.get('quic.path.preferred-address')).toBe(1);
    // The probe and then the traffic reached the second address.
    expect(r.peers).toContain('1');
    expect(
      r.p.lines.some((l) =>
        l.startsWith("A local validating the server's preferred address 198.18.1.2:4433"),
      ),
    ).toBe(true);
    expect(r.p.lines.some((l) => l.startsWith("A local moved to the server's preferred address"))).toBe(true);
    // The server saw the client reach it on its preferred address and moved its side of the path (§9.6.2).
    expect(r.server?.transmitLocal).toEqual({ address: '198.18.1.2', port: 4433 });
    expect(r.server?.counters.get('quic.path.migrated')).toBe(1);
    // The connection ID of sequence 1 is in use, the handshake one retired.
    expect(r.client.state).toBe('established');
  });

  it('another port of the same address works the same way', async () => {
    const r = await run('port', 2);
    expect(r.echoed).toBe(r.body.length);
    expect(r.client.remote).toEqual({ address: '198.18.0.2', port: 4434 });
  });

  it('a preferred address that never answers: three challenges, then the client stays where it is', async () => {
    const r = await run('address', 3, { dropPreferred: true });
    expect(r.echoed).toBe(r.body.length);
    expect(r.client.counters.get('quic.path.preferred-failed')).toBe(1);
    expect(r.client.remote).toEqual({ address: '198.18.0.2', port: 4433 });
    expect(r.p.lines.filter((l) => l.startsWith('A out') && l.includes('PATH_CHALLENGE'))).toHaveLength(3);
  });

  it('a client told not to use it stays; no server advertises one unless configured', async () => {
    const a = await run('address', 4, { usePreferred: false });
    expect(a.client.remote).toEqual({ address: '198.18.0.2', port: 4433 });
    expect(a.client.counters.get('quic.path.preferred-probing')).toBe(0);
    expect(a.client.peerParams?.preferred_address).toBeDefined();
    const b = await run(undefined, 5);
    expect(b.client.peerParams?.preferred_address).toBeUndefined();
  });

  it('the transport parameter round-trips: IPv4, IPv6 (RFC 5952 text), connection ID, reset token', () => {
    const pa = preferredAddressParameter(
      { ipv4: { address: '198.18.1.2', port: 4433 }, ipv6: { address: 'fd00:5757::2', port: 443 } },
      Uint8Array.of(1, 2, 3, 4),
      new Uint8Array(16).fill(9),
    );
    const back = decodeTransportParameters(encodeTransportParameters({ preferred_address: pa }));
    expect(back.preferred_address).toEqual(pa);
    expect(formatIpv6(ipv6Bytes('fd00:5757::2'))).toBe('fd00:5757::2');
    expect(formatIpv6(ipv6Bytes('::'))).toBe('::');
    expect(formatIpv6(ipv6Bytes('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect([...ipv4Bytes('198.18.1.2')]).toEqual([198, 18, 1, 2]);
    expect(() => ipv4Bytes('300.1.1.1')).toThrow(RangeError);
  });
});
