import { bytesEqual, Prng, TraceBus } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  closeAndDrain,
  closeNgtcp2,
  freePort,
  gtlsSite,
  h3Body,
  loopbackSocket,
  ourGet,
  startGtlsServer,
  waitFor,
} from './support/ngtcp2.ts';

/**
 * Our client against ngtcp2's gtlsserver (node:dgram, loopback) for transport features
 * added after the first interop round: gtlsserver advertising a preferred address (RFC 9000
 * §9.6, `--preferred-ipv4-addr=127.0.0.2:PORT`): after the handshake our client validates
 * 127.0.0.2 with the connection ID of sequence 1 and moves there, the 300 kB body still
 * coming; and our path MTU discovery (RFC 9000 §14.3) probing gtlsserver up to 1452 bytes.
 */

const BODY = new Prng(43).bytes(300_000);
const site = gtlsSite('stepwire-quic-preferred-', { 'big.bin': BODY });
afterAll(() => site.remove());
afterEach(closeNgtcp2);

describe('preferred_address and path MTU discovery with ngtcp2 (RFC 9000 §9.6, §14.3)', () => {
  it("our client moves to gtlsserver's preferred address 127.0.0.2 and the 300 kB body arrives whole", async () => {
    const preferredPort = await freePort('127.0.0.2');
    const { port } = await startGtlsServer(site, {
      args: [`--preferred-ipv4-addr=127.0.0.2:${preferredPort}`],
    });
    const sock = await loopbackSocket();
    const from = new Set<string>();
    sock.on('message', (_m, rinfo) => from.add(rinfo.address));
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    const g = await ourGet(site, port, { path: '/big.bin', socket: sock, trace });
    const { conn } = g;
    await waitFor('the response', () => g.fin || g.ended(), 30_000);
    expect(g.fin).toBe(true);
    expect(bytesEqual(h3Body(g.response), BODY)).toBe(true);
    expect(conn.peerParams?.preferred_address?.ipv4Port).toBe(preferredPort);
    expect(conn.counters.get('quic.path.preferred-address')).toBe(1);
    expect(conn.remote).toEqual({ address: '127.0.0.2', port: preferredPort });
    // gtlsserver answered from its preferred address.
    expect(from.has('127.0.0.2')).toBe(true);
    expect(lines.some((l) => l.startsWith('local moved to the server'))).toBe(true);
    await closeAndDrain(g);
  });

  it('our client probes the path MTU against gtlsserver: its PING+PADDING probe of 1452 bytes is acknowledged and the size raised', async () => {
    const { port } = await startGtlsServer(site);
    const sock = await loopbackSocket();
    const sizes: number[] = [];
    const send = sock.send.bind(sock) as (...a: unknown[]) => void;
    (sock as unknown as { send: (...a: unknown[]) => void }).send = (msg: unknown, ...rest: unknown[]) => {
      sizes.push((msg as Uint8Array).byteLength);
      send(msg, ...rest);
    };
    const g = await ourGet(site, port, {
      path: '/big.bin',
      socket: sock,
      transport: { maxUdpPayloadSize: 1452 },
    });
    const { conn } = g;
    await waitFor('the response', () => g.fin || g.ended(), 30_000);
    expect(g.fin).toBe(true);
    expect(bytesEqual(h3Body(g.response), BODY)).toBe(true);
    expect(conn.counters.get('quic.pmtu.probe')).toBeGreaterThanOrEqual(1);
    expect(conn.maxDatagramSize).toBe(1452);
    expect(conn.pmtuState).toBe('search-complete');
    expect(Math.max(...sizes)).toBe(1452);
    await closeAndDrain(g);
  });
});
