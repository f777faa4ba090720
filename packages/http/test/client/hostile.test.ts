import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { VirtualClock } from '@stepwire/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import type { ClientResponse } from '../../src/client/connection.ts';
import { fetch } from '../../src/client/fetch.ts';
import { type ClientRequest, request } from '../../src/client/request.ts';

/** Hand-written servers on node:net: what a real server may do to a client at the worst moment. */
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function rawServer(
  onRequest: (socket: net.Socket, index: number, connection: number) => void,
): Promise<number> {
  let connections = 0;
  const s = net.createServer((socket) => {
    const conn = ++connections;
    let buf = '';
    let n = 0;
    socket.on('data', (b) => {
      buf += b.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(i + 4);
        onRequest(socket, n++, conn);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

function responseOf(req: ClientRequest): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}

async function text(res: ClientResponse): Promise<string> {
  let s = '';
  for await (const c of res) s += (c as Buffer).toString();
  return s;
}

describe('the client against misbehaving servers', () => {
  it('a kept connection that dies under a reused GET is retried once on a new connection (RFC 9112 §9.3.1)', async () => {
    const port = await rawServer((socket, index, connection) => {
      if (connection === 1 && index === 1) socket.destroy();
      else socket.write(ok(`c${connection} r${index}`));
    });
    const agent = new Agent();
    expect(
      await text(await responseOf(request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest)),
    ).toBe('c1 r0');
    const again = request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest;
    const retries: Error[] = [];
    again.on('retry', (e: Error) => retries.push(e));
    expect(await text(await responseOf(again))).toBe('c2 r0');
    expect(retries.length).toBe(1);
    expect(agent.stats().origins[`http://127.0.0.1:${port}`]?.created).toBe(2);
    agent.destroy();
  });

  it('a POST on a dying kept connection is not retried: the error reaches the caller', async () => {
    const port = await rawServer((socket, index, connection) => {
      if (connection === 1 && index === 1) socket.destroy();
      else socket.write(ok('fine'));
    });
    const agent = new Agent();
    await text(await responseOf(request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest));
    const post = request(`http://127.0.0.1:${port}/`, { agent, method: 'POST' }).end('data') as ClientRequest;
    await expect(responseOf(post)).rejects.toMatchObject({ code: 'ECONNRESET' });
    agent.destroy();
  });

  for (const [name, reply, pattern] of [
    ['garbage instead of a status line', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /status|line|version/i],
    ['a bare LF field section', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', /./],
    [
      'Content-Length and Transfer-Encoding together',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      /Transfer-Encoding/i,
    ],
    [
      'two different Content-Lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      /Content-Length/i,
    ],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk/i],
  ] as const) {
    it(`${name}: an error, and the pool slot is freed`, async () => {
      const port = await rawServer((socket) => socket.write(reply));
      const agent = new Agent({ maxSockets: 1 });
      const req = request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest;
      let err: Error | undefined;
      try {
        const res = await responseOf(req);
        await text(res);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).toMatch(pattern);
      await new Promise((r) => setImmediate(r));
      expect(agent.stats().origins[`http://127.0.0.1:${port}`]).toMatchObject({ active: 0, idle: 0 });
      agent.destroy();
    });
  }

  it('a body cut short: fetch hands over what arrived, then fails', async () => {
    const port = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly forty bytes of the hundred promised.');
      setImmediate(() => socket.destroy());
    });
    const agent = new Agent();
    const r = await fetch(`http://127.0.0.1:${port}/`, { agent });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let got = '';
    let failure: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got += Buffer.from(value).toString();
      }
    } catch (e) {
      failure = e;
    }
    expect(got).toBe('only forty bytes of the hundred promised.');
    expect(failure).toBeInstanceOf(Error);
    agent.destroy();
  });

  it('a request timeout fires on the agent clock when no response head comes', async () => {
    const port = await rawServer(() => {});
    const clock = new VirtualClock();
    const agent = new Agent({ clock });
    const req = request(`http://127.0.0.1:${port}/`, { agent, timeout: 1000 }).end() as ClientRequest;
    req.on('error', () => {});
    let fired = false;
    req.on('timeout', () => {
      fired = true;
      req.destroy(new Error('gave up'));
    });
    await once(req, 'socket');
    clock.advance(999);
    expect(fired).toBe(false);
    clock.advance(1);
    expect(fired).toBe(true);
    expect(agent.stats().timersArmed).toBe(0);
    agent.destroy();
  });
});

describe('interim responses', () => {
  it('103 Early Hints and 100 Continue come as information events before the final response', async () => {
    const port = await rawServer((socket) =>
      socket.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
          ok('final'),
      ),
    );
    const agent = new Agent();
    const req = request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest;
    const infos: { statusCode: number; headers: Record<string, string> }[] = [];
    let continued = false;
    req.on('information', (i: { statusCode: number; headers: Record<string, string> }) => infos.push(i));
    req.on('continue', () => {
      continued = true;
    });
    const res = await responseOf(req);
    expect(await text(res)).toBe('final');
    expect(infos.map((i) => i.statusCode)).toEqual([100, 103]);
    expect(infos[1]?.headers.link).toBe('</style.css>; rel=preload');
    expect(continued).toBe(true);
    agent.destroy();
  });
});

describe('the default connect goes through net.connect, so the loopback guard sees it', () => {
  it('a request off loopback fails with the safety error, never reaching the kernel', async () => {
    const agent = new Agent();
    const req = request('http://198.18.0.2/', { agent }).end() as ClientRequest;
    const [err] = (await once(req, 'error')) as [Error];
    expect(err.message).toMatch(/stepwire safety: refusing a kernel TCP connection to 198\.18\.0\.2/);
    expect(agent.stats().origins['http://198.18.0.2:80']).toMatchObject({ active: 0, created: 0 });
    agent.destroy();
  });
});

describe('limits on what a server may send', () => {
  it('a response head past maxHeaderSize and a body past maxBodySize are errors, not memory', async () => {
    const port = await rawServer((socket, index) => {
      if (index === 0)
        socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`);
    });
    const agent = new Agent();
    await expect(
      responseOf(request(`http://127.0.0.1:${port}/`, { agent }).end() as ClientRequest),
    ).rejects.toThrow(/head over 16384/);
    const port2 = await rawServer((socket) =>
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n${'b'.repeat(5000)}`),
    );
    const small = new Agent({ limits: { maxBodySize: 1000 } });
    await expect(
      responseOf(request(`http://127.0.0.1:${port2}/`, { agent: small }).end() as ClientRequest),
    ).rejects.toThrow(/over 1000/);
    agent.destroy();
    small.destroy();
  });
});
