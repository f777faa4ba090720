import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { forbidKernelTrafficOffLoopback } from '../src/safety.ts';

describe('the kernel-traffic guard (installed in every test worker)', () => {
  forbidKernelTrafficOffLoopback();

  it('refuses kernel TCP and UDP toward our stack’s addresses', () => {
    expect(() => net.connect({ host: '198.18.0.2', port: 80 })).toThrow(/stepwire safety/);
    expect(() => net.connect(80, '198.18.0.2')).toThrow(/stepwire safety/);
    // node:http hands net.Socket.connect a `path: null` for TCP (and ignores createConnection
    // when agent:false): the guard must still see the host.
    expect(() => http.get({ host: '198.18.0.2', port: 80, path: '/', agent: false })).toThrow(
      /stepwire safety/,
    );
    expect(() => http.get({ host: '198.18.0.2', port: 80, path: '/' })).toThrow(/stepwire safety/);
    const s = dgram.createSocket('udp4');
    expect(() => s.send(Buffer.from('x'), 7, '198.18.0.2')).toThrow(/stepwire safety/);
    s.close();
  });

  it('lets loopback through', async () => {
    const server = net.createServer((c) => c.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port });
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    expect(got).toBe('ok');
    server.close();
  });
});
