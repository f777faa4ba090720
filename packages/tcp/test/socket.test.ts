import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../src/index.ts';
import { collect, once, tcpSim } from './net.ts';

describe('TcpSocket over two simulated hosts', () => {
  it('echoes', async () => {
    const { a, b, run, sim } = tcpSim();
    const server = b.createServer((s: TcpSocket) => s.pipe(s));
    server.listen(7);
    await run(once(server, 'listening'));
    const c = a.connect({ host: sim.b.ipv4, port: 7 });
    const got = collect(c);
    const closed = once(c, 'close');
    await run(once(c, 'connect'));
    expect(c.remoteAddress).toBe('198.18.0.2');
    expect(c.remotePort).toBe(7);
    expect(c.localAddress).toBe('198.18.0.1');
    c.write('hello ');
    c.end('world');
    const data = await run(got);
    expect(data.toString()).toBe('hello world');
    await run(closed);
  });
});
