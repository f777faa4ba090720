/**
 * Closing a session (RFC 9113 §6.8): a graceful close sends GOAWAY and no RST_STREAM for
 * streams that finished; a peer that destroys its socket first ends the session quietly
 * (no RST_STREAM written after the GOAWAY, no 'error'). Over node:net, against node:http2
 * and our own client and server.
 */
import type { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connect,
  createServer,
  decodeFrame,
  decodeFrameHeader,
  type Http2Frame,
  type Http2Session,
} from '../../src/h2/internal.ts';

/** Frames a session wrote to `socket`, decoded (wraps write; the socket is unchanged otherwise). */
function recordWrites(socket: Duplex): Http2Frame[] {
  const frames: Http2Frame[] = [];
  let pending = Buffer.alloc(0);
  const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
  (socket as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
    if (chunk instanceof Uint8Array) {
      pending = Buffer.concat([pending, chunk]);
      // A client's writes start with the 24-octet preface.
      if (pending.subarray(0, 3).toString() === 'PRI') pending = pending.subarray(24);
      let at = 0;
      while (pending.length - at >= 9) {
        const h = decodeFrameHeader(pending, at);
        if (pending.length - at < 9 + h.length) break;
        frames.push(decodeFrame(pending.subarray(at, at + 9 + h.length)));
        at += 9 + h.length;
      }
      pending = pending.subarray(at);
    }
    return write(chunk, ...rest);
  };
  return frames;
}

const after = (frames: Http2Frame[], type: Http2Frame['type']) => {
  const i = frames.findIndex((f) => f.type === type);
  return i < 0 ? [] : frames.slice(i + 1);
};

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function listen(server: net.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

const once = <T>(e: EventEmitter, name: string) => new Promise<T>((r) => e.once(name, (a: T) => r(a)));

describe('our server closing', () => {
  it('graceful close with finished and unread streams: GOAWAY, then no RST_STREAM; node:http2 sees every answer', async () => {
    const ours = createServer({}, (stream) => {
      // The request's (empty) body is never read: the stream finished, the app just did not look.
      stream.respond({ ':status': 200 });
      stream.end('done');
    });
    let frames: Http2Frame[] = [];
    let session: Http2Session | undefined;
    const tcp = net.createServer((sock) => {
      frames = recordWrites(sock);
      session = ours.handle(sock);
    });
    const port = await listen(tcp);
    cleanups.push(() => tcp.close());
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => client.destroy());
    const bodies = await Promise.all(
      [1, 2, 3].map(
        (i) =>
          new Promise<string>((resolve, reject) => {
            const r = client.request({ ':path': `/${i}` });
            let b = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => {
              b += d;
            });
            r.on('end', () => resolve(b));
            r.on('error', reject);
          }),
      ),
    );
    expect(bodies).toEqual(['done', 'done', 'done']);
    const errors: unknown[] = [];
    session?.on('error', (e) => errors.push(e));
    const closed = once(session as Http2Session, 'close');
    session?.close();
    await closed;
    expect(frames.some((f) => f.type === 'GOAWAY')).toBe(true);
    expect(after(frames, 'GOAWAY').filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(frames.filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('the peer destroys its socket after our GOAWAY while a stream is in flight: no RST_STREAM, no error, the session closes', async () => {
    let held: (() => void) | undefined;
    const ours = createServer({}, (stream, headers) => {
      if (headers[':path'] === '/hold') {
        held = () => stream.respond({ ':status': 200 });
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('done');
    });
    let frames: Http2Frame[] = [];
    let session: Http2Session | undefined;
    const tcp = net.createServer((sock) => {
      frames = recordWrites(sock);
      session = ours.handle(sock);
    });
    const port = await listen(tcp);
    cleanups.push(() => tcp.close());
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => {});
    const done = client.request({ ':path': '/done' });
    done.resume();
    await once(done, 'end');
    const hold = client.request({ ':path': '/hold' });
    hold.on('error', () => {});
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (held) {
          clearInterval(t);
          r();
        }
      }, 5);
    });
    const errors: unknown[] = [];
    session?.on('error', (e) => errors.push(e));
    const closed = once(session as Http2Session, 'close');
    const goaway = once(client, 'goaway');
    session?.close();
    await goaway;
    // node:http2's client drops the connection without waiting for the held stream.
    client.destroy();
    await closed;
    expect(frames.some((f) => f.type === 'GOAWAY')).toBe(true);
    expect(after(frames, 'GOAWAY').filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(errors).toEqual([]);
    expect(session?.closed).toBe(true);
  });
});

describe('our client closing', () => {
  it('against node:http2: the server destroys the socket after its GOAWAY; our session ends quietly, no RST_STREAM', async () => {
    const srv = http2.createServer();
    srv.on('stream', (stream, headers) => {
      if (headers[':path'] === '/hold') return;
      stream.respond({ ':status': 200 });
      stream.end('done');
    });
    srv.on('session', (s) => {
      s.on('error', () => {});
      srv.emit('testSession', s);
    });
    const port = await listen(srv);
    cleanups.push(() => srv.close());
    const serverSession = once<http2.ServerHttp2Session>(srv, 'testSession');
    let frames: Http2Frame[] = [];
    const session = connect(`http://127.0.0.1:${port}`, {
      createConnection: () => {
        const s = net.connect(port, '127.0.0.1');
        frames = recordWrites(s);
        return s;
      },
    });
    const errors: unknown[] = [];
    session.on('error', (e) => errors.push(e));
    const r = session.request({ ':path': '/done' });
    r.resume();
    await once(r, 'end');
    const hold = session.request({ ':path': '/hold' });
    const holdErrors: unknown[] = [];
    hold.on('error', (e) => holdErrors.push(e));
    const ss = await serverSession;
    const closed = once(session, 'close');
    const goaway = once(session, 'goaway');
    ss.goaway(0, 3);
    await goaway;
    ss.destroy();
    await closed;
    expect(after(frames, 'GOAWAY').filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(frames.filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('against our server: graceful close of our client with a finished stream sends GOAWAY and no RST_STREAM', async () => {
    const ours = createServer({}, (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('done');
    });
    const tcp = net.createServer((sock) => ours.handle(sock));
    const port = await listen(tcp);
    cleanups.push(() => {
      for (const s of ours.sessions) s.destroy();
      tcp.close();
    });
    let frames: Http2Frame[] = [];
    const session = connect(`http://127.0.0.1:${port}`, {
      createConnection: () => {
        const s = net.connect(port, '127.0.0.1');
        frames = recordWrites(s);
        return s;
      },
    });
    const errors: unknown[] = [];
    session.on('error', (e) => errors.push(e));
    const r = session.request({ ':path': '/' });
    // Headers read; the body is left unread: the stream is finished on the wire all the same.
    await once(r, 'response');
    await new Promise((res) => setTimeout(res, 20));
    const closed = once(session, 'close');
    session.close();
    await closed;
    expect(frames.some((f) => f.type === 'GOAWAY')).toBe(true);
    expect(frames.filter((f) => f.type === 'RST_STREAM')).toEqual([]);
    expect(errors).toEqual([]);
  });
});

describe('a peer that resets the TCP connection after GOAWAY', () => {
  it('ECONNRESET after our GOAWAY ends the session quietly (no error, no RST_STREAM)', async () => {
    const { RawClient } = await import('./raw-client.ts');
    const ours = createServer({}, (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('done');
    });
    let frames: Http2Frame[] = [];
    let session: Http2Session | undefined;
    const tcp = net.createServer((sock) => {
      frames = recordWrites(sock);
      session = ours.handle(sock);
    });
    const port = await listen(tcp);
    cleanups.push(() => tcp.close());
    const c = await RawClient.connect(port);
    c.write(c.request(1, '/'));
    await c.until(() => c.frames.some((f) => f.type === 'DATA' && f.endStream));
    const errors: unknown[] = [];
    session?.on('error', (e) => errors.push(e));
    ours.on('sessionError', (e) => errors.push(e));
    const closed = once(session as Http2Session, 'close');
    session?.close();
    await c.until(() => c.frames.some((f) => f.type === 'GOAWAY'));
    // A TCP RST, as a peer that destroys its socket with unread data sends.
    c.socket.resetAndDestroy();
    await closed;
    expect(errors).toEqual([]);
    expect(frames.filter((f) => f.type === 'RST_STREAM')).toEqual([]);
  });
});
