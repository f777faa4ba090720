import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Udp } from '../src/socket.ts';
import { FakeStack } from './fake-stack.ts';

// Issue 15: a layer's stats show what it holds, and it all returns to idle.
describe('Udp stats', () => {
  it('counts bound sockets and deferred callbacks, back to zero when every socket is closed', () => {
    const clock = new VirtualClock();
    const a = new FakeStack('A', clock, ['198.18.0.1'], 1);
    const b = new FakeStack('B', clock, ['198.18.0.2'], 2);
    FakeStack.wire(a, b);
    const ua = new Udp(a);
    const ub = new Udp(b);
    const server = ub.createSocket('udp4', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
    server.bind(7);
    const sockets = Array.from({ length: 50 }, () => ua.createSocket('udp4'));
    for (const s of sockets) s.send('ping', 7, '198.18.0.2');
    expect(ua.stats.timersArmed).toBeGreaterThan(0);
    clock.runUntilIdle();
    expect(ua.stats).toEqual({ boundSockets: 50, timersArmed: 0 });
    expect(ub.stats).toEqual({ boundSockets: 1, timersArmed: 0 });
    for (const s of sockets) s.close();
    server.close();
    clock.runUntilIdle();
    expect(ua.stats).toEqual({ boundSockets: 0, timersArmed: 0 });
    expect(ub.stats).toEqual({ boundSockets: 0, timersArmed: 0 });
  });
});
