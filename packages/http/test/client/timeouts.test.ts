import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { VirtualClock } from '@stepwire/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import { ClientConnection, type ClientResponse } from '../../src/client/connection.ts';
import { fetch } from '../../src/client/fetch.ts';
import { type ClientRequest, request } from '../../src/client/request.ts';

/**
 * The client's timeouts, driven by the HTTP/1.1 core's deadlines on the agent's clock (a
 * VirtualClock here, advanced by hand): request({ timeout }) emits 'timeout' as node:http's
 * does when the response head is late or the body goes quiet, once per quiet spell, without
 * aborting; an idle kept connection closes at its keep-alive deadline. Against hand-written
 * servers on node:net that answer when told to.
 */
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A server that hands each connection's socket out, once a request head is in. */
async function heldServer(): Promise<{ port: number; next: () => Promise<net.Socket> }> {
  const waiting: ((s: net.Socket) => void)[] = [];
  const ready: net.Socket[] = [];
  const s = net.createServer((socket) => {
    sockets.push(socket);
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        buf = '';
        const w = waiting.shift();
        if (w) w(socket);
        else ready.push(socket);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    port: (s.address() as AddressInfo).port,
    next: () => {
      const r = ready.shift();
      return r ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** Let real socket bytes arrive and be parsed. */
const io = () => new Promise((r) => setTimeout(r, 20));

describe('request({ timeout }) on the core deadlines', () => {
  it('response timeout: "timeout" when no head comes within ms of the request, not before; counted', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const req = request(`http://127.0.0.1:${srv.port}/`, { agent, timeout: 1000 }).end() as ClientRequest;
    req.on('error', () => {});
    let fired = 0;
    req.on('timeout', () => fired++);
    await srv.next();
    clock.advance(999);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
    expect(req.timeouts.response).toBe(1);
    req.destroy();
    expect(agent.stats().timersArmed).toBe(0);
    agent.destroy();
  });

  it('"timeout" fires once per quiet spell and does not abort: a late answer still completes', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    let res: ClientResponse | undefined;
    const req = request(`http://127.0.0.1:${srv.port}/`, { agent, timeout: 1000 }, (r) => {
      res = r;
    }).end() as ClientRequest;
    let fired = 0;
    req.on('timeout', () => fired++);
    const sock = await srv.next();
    for (let i = 0; i < 5; i++) clock.advance(1000);
    expect(fired).toBe(1);
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate');
    await once(req, 'response');
    let body = '';
    res?.setEncoding('utf8');
    res?.on('data', (d: string) => (body += d));
    if (res) await once(res, 'end');
    expect(body).toBe('late');
    expect(res?.statusCode).toBe(200);
    expect(fired).toBe(1);
    agent.destroy();
  });

  it('body timeout: quiet inside the body for ms gives "timeout"; each chunk moves the deadline', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const req = request(`http://127.0.0.1:${srv.port}/`, { agent, timeout: 1000 }).end() as ClientRequest;
    req.on('error', () => {});
    let fired = 0;
    req.on('timeout', () => fired++);
    const got: string[] = [];
    req.on('response', (r: ClientResponse) => r.on('data', (d: Buffer) => got.push(d.toString())));
    const sock = await srv.next();
    clock.advance(500);
    sock.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab');
    await io();
    clock.advance(900);
    sock.write('cd');
    await io();
    // 1400 ms since the request, 900 since the head: the second chunk moved the deadline
    clock.advance(900);
    expect(fired).toBe(0);
    clock.advance(100);
    expect(fired).toBe(1);
    expect(req.timeouts).toEqual({ connect: 0, response: 0, body: 1 });
    expect(got.join('')).toBe('abcd');
    req.destroy();
    expect(agent.stats().timersArmed).toBe(0);
    agent.destroy();
  });

  it('without a timeout no deadline is armed (node:http has none by default)', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const req = request(`http://127.0.0.1:${srv.port}/`, { agent }).end() as ClientRequest;
    req.on('error', () => {});
    let fired = 0;
    req.on('timeout', () => fired++);
    await srv.next();
    expect(agent.stats().timersArmed).toBe(0);
    clock.advance(3_600_000);
    expect(fired).toBe(0);
    req.destroy();
    agent.destroy();
  });

  it('req.setTimeout() during the exchange sets the running deadlines', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const req = request(`http://127.0.0.1:${srv.port}/`, { agent }).end() as ClientRequest;
    req.on('error', () => {});
    let fired = 0;
    await srv.next();
    clock.advance(100);
    req.setTimeout(300, () => fired++);
    // the response deadline counts from the request's end (t=0): 300
    clock.advance(199);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
    req.destroy();
    agent.destroy();
  });
});

describe('keep-alive idle on a client connection (core deadline)', () => {
  it('an idle kept connection closes at its keep-alive deadline, counted; its timer goes with it', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const timers: { at: number; cancelled: boolean }[] = [];
    const socket = net.connect(srv.port, '127.0.0.1');
    await once(socket, 'connect');
    const conn = new ClientConnection(socket, () => clock.now(), undefined, {
      setTimer: (at, fn) => {
        const t = { at, cancelled: false };
        timers.push(t);
        const inner = clock.setTimer(at, fn);
        return {
          cancel: () => {
            t.cancelled = true;
            inner.cancel();
          },
        };
      },
      timeouts: { keepAliveTimeout: 4000 },
    });
    let reusable = 0;
    conn.onReusable = () => reusable++;
    const dead = new Promise<void>((r) => {
      conn.onDead = () => r();
    });
    let body = '';
    conn.begin(
      { method: 'GET', target: '/', version: { major: 1, minor: 1 }, fields: [['Host', 'x']] },
      {
        onInformational: () => {},
        onResponse: () => {},
        onData: (d) => {
          body += Buffer.from(d).toString();
          return true;
        },
        onEnd: () => {},
        onUpgrade: () => {},
        onError: () => {},
      },
    );
    conn.writeEnd([], () => {});
    const server = await srv.next();
    clock.advance(1000);
    server.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await io();
    expect(body).toBe('ok');
    expect(reusable).toBe(1);
    expect(conn.dead).toBe(false);
    // idle since t=1000: the deadline is 5000
    clock.advance(3999);
    expect(conn.dead).toBe(false);
    clock.advance(1);
    await dead;
    expect(conn.dead).toBe(true);
    expect(conn.timeoutCounts).toEqual({ response: 0, body: 0, 'keep-alive': 1 });
    // one timer at a time, none left armed
    expect(timers.filter((t) => !t.cancelled && t.at > clock.now())).toEqual([]);
  });
});

describe('fetch', () => {
  it('an AbortSignal still aborts a fetch whose response head never comes (no timer left armed)', async () => {
    const srv = await heldServer();
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const ac = new AbortController();
    const p = fetch(`http://127.0.0.1:${srv.port}/`, { agent, signal: ac.signal });
    await srv.next();
    ac.abort();
    await expect(p).rejects.toThrow(/abort/i);
    expect(agent.stats().timersArmed).toBe(0);
    agent.destroy();
  });
});
