import { describe, expect, it } from 'vitest';
import { Http1Connection } from '../../src/h1/connection.ts';

/**
 * The client role's deadlines in the sans-I/O core: returned by nextTimeout(), reported by
 * onTimeout(now) — no timer of its own. One per phase of an exchange: the response head
 * after the request went out, the silence inside a response body, the kept connection idle
 * between exchanges (RFC 9112 §9.3).
 */
const GET = {
  method: 'GET',
  target: '/',
  version: { major: 1, minor: 1 },
  fields: [['Host', 'x'] as const],
};
const b = (s: string) => Buffer.from(s, 'latin1');

function client(timeouts: { responseTimeout?: number; bodyTimeout?: number; keepAliveTimeout?: number }) {
  return new Http1Connection({ role: 'client', timeouts, now: 0 });
}

describe('client deadlines (sans-I/O core)', () => {
  it('response timeout: counts from the end of the request, not its start; fires at the deadline only', () => {
    const c = client({ responseTimeout: 1000 });
    c.send({ type: 'request', head: GET }, 10);
    // the request is still being sent: no response deadline yet
    expect(c.nextTimeout()).toBeUndefined();
    c.send({ type: 'end' }, 50);
    expect(c.nextTimeout()).toBe(1050);
    expect(c.onTimeout(1049)).toEqual([]);
    expect(c.onTimeout(1050)).toEqual([{ type: 'timeout', kind: 'response' }]);
  });

  it('response timeout fires once per quiet spell; a 1xx restarts it; the head ends it', () => {
    const c = client({ responseTimeout: 1000 });
    c.send({ type: 'request', head: GET }, 0);
    c.send({ type: 'end' }, 0);
    expect(c.onTimeout(1000)).toEqual([{ type: 'timeout', kind: 'response' }]);
    // not again for the same silence: the caller decides whether to give up
    expect(c.nextTimeout()).toBeUndefined();
    expect(c.onTimeout(5000)).toEqual([]);
    // an interim response is progress: the final one is awaited afresh (RFC 9110 §15.2)
    c.receive(b('HTTP/1.1 100 Continue\r\n\r\n'), 6000);
    expect(c.nextTimeout()).toBe(7000);
    c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 6500);
    // now in the body: the body deadline runs from the head's arrival (no body timeout set)
    expect(c.nextTimeout()).toBeUndefined();
  });

  it('body timeout: the longest silence inside a body; every byte moves the deadline', () => {
    const c = client({ bodyTimeout: 500 });
    c.send({ type: 'request', head: GET }, 0);
    c.send({ type: 'end' }, 0);
    expect(c.nextTimeout()).toBeUndefined();
    c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'), 100);
    expect(c.nextTimeout()).toBe(600);
    c.receive(b('cd'), 400);
    expect(c.nextTimeout()).toBe(900);
    expect(c.onTimeout(899)).toEqual([]);
    expect(c.onTimeout(900)).toEqual([{ type: 'timeout', kind: 'body' }]);
    expect(c.nextTimeout()).toBeUndefined();
    // the server goes on: a new quiet spell has its own deadline; the body can still end
    c.receive(b('ef'), 2000);
    expect(c.nextTimeout()).toBe(2500);
    const ev = c.receive(b('ghij'), 2100);
    expect(ev.map((e) => e.type)).toEqual(['data', 'end']);
  });

  it('body timeout: silence while the caller does not read is not the server’s (resumeReading)', () => {
    const c = client({ bodyTimeout: 500 });
    c.send({ type: 'request', head: GET }, 0);
    c.send({ type: 'end' }, 0);
    c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'), 0);
    expect(c.nextTimeout()).toBe(500);
    // the driver paused reading at 0 and resumes at 3000
    c.resumeReading(3000);
    expect(c.nextTimeout()).toBe(3500);
  });

  it('keep-alive: a kept connection idle between exchanges times out; the connection is then over', () => {
    const c = client({ keepAliveTimeout: 4000 });
    // fresh and idle from its start
    expect(c.nextTimeout()).toBe(4000);
    c.send({ type: 'request', head: GET }, 100);
    c.send({ type: 'end' }, 100);
    expect(c.nextTimeout()).toBeUndefined();
    c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 300);
    expect(c.ourState).toBe('IDLE');
    expect(c.nextTimeout()).toBe(4300);
    expect(c.onTimeout(4300)).toEqual([{ type: 'timeout', kind: 'keep-alive' }]);
    expect(c.keepAlive).toBe(false);
    expect(c.nextTimeout()).toBeUndefined();
  });

  it('no response or body deadline unless set (node:http has none by default)', () => {
    const c = new Http1Connection({ role: 'client', timeouts: { keepAliveTimeout: 0 } });
    c.send({ type: 'request', head: GET }, 0);
    c.send({ type: 'end' }, 0);
    expect(c.nextTimeout()).toBeUndefined();
    c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'), 0);
    expect(c.nextTimeout()).toBeUndefined();
  });

  it('a connection closed by the response (Connection: close) has no keep-alive deadline', () => {
    const c = client({ keepAliveTimeout: 4000 });
    c.send({ type: 'request', head: GET }, 0);
    c.send({ type: 'end' }, 0);
    c.receive(b('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'), 10);
    expect(c.ourState).toBe('MUST_CLOSE');
    expect(c.nextTimeout()).toBeUndefined();
  });
});
