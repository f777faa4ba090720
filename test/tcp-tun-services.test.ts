/**
 * The TCP services of `stepwire serve` (tcp-services.ts) on the simulated network, so they
 * are checked without root: echo returns every byte and answers a half-close with its own
 * FIN, discard counts and drops, HTTP serves the app's routes over our sockets, a port
 * taken twice fails at once with EADDRINUSE, and close() ends open connections.
 * The same services against the Linux kernel: tcp-tun-server.test.ts and tcp-tun-cli.test.ts.
 */
import { Sim } from '@stepwire/sim';
import type { TcpSocket } from '@stepwire/tcp';
import { describe, expect, it } from 'vitest';
import { httpOverTcp, tcpDiscard, tcpEcho } from '../packages/cli/src/services/tcp-services.ts';
import { patternSha256, seededBytes, sha256 } from './support/tcp-tun.ts';

function collect(sock: TcpSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.once('end', () => resolve(Buffer.concat(chunks)));
    sock.once('error', reject);
  });
}

describe('tcp services on the simulated network', () => {
  it('echo (RFC 862): 300 kB back over both families, and our FIN after the client half-closes', async () => {
    const sim = new Sim({ seed: 11 });
    const echo = tcpEcho(sim.b.tcp, 7);
    try {
      for (const dst of [sim.b.ipv4, sim.b.ipv6]) {
        const body = seededBytes(300_000, dst.length);
        const sock = sim.a.tcp.connect({ host: dst, port: 7, allowHalfOpen: true });
        const back = collect(sock);
        const closed = new Promise((r) => sock.once('close', r));
        sock.end(body);
        expect(sha256(await sim.run(back))).toBe(sha256(body));
        await sim.run(closed);
      }
      expect(echo.connections).toBe(2);
      expect(echo.bytesIn).toBe(600_000);
      expect(echo.bytesOut).toBe(echo.bytesIn);
      expect(echo.errors).toBe(0);
    } finally {
      echo.close();
      sim.close();
    }
  });

  it('discard (RFC 863): reads everything, sends nothing, closes when the client does', async () => {
    const sim = new Sim({ seed: 12 });
    const discard = tcpDiscard(sim.b.tcp, 9);
    try {
      const sock = sim.a.tcp.connect({ host: sim.b.ipv4, port: 9 });
      const back = collect(sock);
      sock.end(seededBytes(200_000, 1));
      expect((await sim.run(back)).length).toBe(0);
      expect(discard.bytesIn).toBe(200_000);
      expect(discard.bytesOut).toBe(0);
    } finally {
      discard.close();
      sim.close();
    }
  });

  it('HTTP over our sockets: GET /bytes/N hashes to the pattern', async () => {
    const sim = new Sim({ seed: 13 });
    const web = httpOverTcp(sim.b.tcp, 80);
    try {
      const sock = sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 });
      const back = collect(sock);
      sock.write('GET /bytes/100000 HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n');
      const res = await sim.run(back);
      const split = res.indexOf('\r\n\r\n');
      expect(res.subarray(0, split).toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const body = res.subarray(split + 4);
      expect(body.length).toBe(100_000);
      // The pattern's definition, byte by byte: byte i is i mod 251.
      expect(body.findIndex((b, i) => b !== i % 251)).toBe(-1);
      expect(sha256(body)).toBe(patternSha256(100_000));
      // The hash helper the TUN tests use, pinned to a digest computed outside this codebase:
      // /usr/bin/python3 -c "import hashlib; print(hashlib.sha256(bytes(i % 251 for i in range(100000))).hexdigest())"
      expect(patternSha256(100_000)).toBe('cd2df694e424bc7968cc37f47751019e5ca0cd1bdf2e479ea537c3a1c32ee1aa');
      expect(web.connections).toBe(1);
    } finally {
      web.close();
      sim.close();
    }
  });

  it('a port taken twice fails at once with EADDRINUSE; close() frees it and ends open connections', async () => {
    const sim = new Sim({ seed: 14 });
    const echo = tcpEcho(sim.b.tcp, 7);
    expect(() => tcpDiscard(sim.b.tcp, 7)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    const accepted = new Promise((r) => echo.server.once('connection', r));
    const sock = sim.a.tcp.connect({ host: sim.b.ipv4, port: 7 });
    sock.resume();
    await sim.run(accepted);
    const err = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      sock.once('error', resolve);
      sock.once('close', () => resolve(undefined));
    });
    echo.close();
    const e = await sim.run(err);
    // A server that goes away mid-connection: its close() destroys the socket, which with
    // nothing unread ends in a FIN (the client sees end, not an error).
    expect(e).toBeUndefined();
    const again = tcpDiscard(sim.b.tcp, 7);
    again.close();
    sim.close();
  });
});
