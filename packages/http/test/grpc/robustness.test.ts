/**
 * Hostile or broken peers: whatever bytes a client puts in a call's DATA, our server
 * answers with a grpc-status and keeps serving; a connection lost mid-call ends the call
 * UNAVAILABLE on the client, never with an uncaught error.
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addEchoService,
  connectGrpc,
  echoService,
  GrpcError,
  GrpcServer,
  GrpcStatus,
  grpcRawMethod,
} from '../../src/grpc/index.ts';
import { connect, type Http2Session } from '../../src/h2/session.ts';

let server: GrpcServer;
let tcp: net.Server;
let port = 0;
beforeAll(async () => {
  server = new GrpcServer({ maxReceiveMessageSize: 256 });
  addEchoService(server);
  server.addService(
    { Hang: grpcRawMethod('/t.S/Hang', 'server_streaming') },
    {
      Hang: async function* (_req, call) {
        yield new Uint8Array([1]);
        // The client's connection is cut while this call is open.
        await new Promise((r) => call.signal.addEventListener('abort', r));
      },
    },
  );
  tcp = net.createServer((sock) => server.handle(sock));
  port = await new Promise<number>((r) =>
    tcp.listen(0, '127.0.0.1', () => r((tcp.address() as net.AddressInfo).port)),
  );
});
afterAll(() => {
  for (const s of server.http2.sessions) s.destroy();
  tcp.close();
});

function rawCall(session: Http2Session, path: string, body: Uint8Array): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = session.request(
      { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    let status: Record<string, unknown> | undefined;
    s.on('response', (h, flags) => {
      if (flags.endStream) status = h;
    });
    s.on('trailers', (t) => {
      status = t;
    });
    s.on('error', () => {});
    s.resume();
    const done = () => (status ? resolve(status) : reject(new Error(`no grpc-status (rst ${s.rstCode})`)));
    s.on('end', done);
    s.on('streamClosed', () => setImmediate(done));
    s.end(body);
  });
}

describe('hostile request bodies', () => {
  it('arbitrary DATA on each call kind: always a grpc-status, never a crash; the connection keeps serving', async () => {
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const paths = [
        '/stepwire.Echo/Unary',
        '/stepwire.Echo/ServerStream',
        '/stepwire.Echo/ClientStream',
        '/stepwire.Echo/Bidi',
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...paths), fc.uint8Array({ maxLength: 300 }), async (path, body) => {
          const st = await rawCall(session, path, body);
          expect(Number(st['grpc-status'])).toBeGreaterThanOrEqual(0);
          expect(Number(st['grpc-status'])).toBeLessThanOrEqual(16);
        }),
        { numRuns: 60 },
      );
      // A frame announcing more than the 256-byte limit: RESOURCE_EXHAUSTED.
      const big = await rawCall(session, '/stepwire.Echo/Unary', Uint8Array.from([0, 0, 0, 4, 0]));
      expect(big['grpc-status']).toBe(String(GrpcStatus.RESOURCE_EXHAUSTED));
      // A message cut short by END_STREAM: INTERNAL.
      const cut = await rawCall(session, '/stepwire.Echo/Unary', Uint8Array.from([0, 0, 0, 0, 9, 1]));
      expect(cut['grpc-status']).toBe(String(GrpcStatus.INTERNAL));
      // Zero messages for a unary call: INTERNAL.
      const none = await rawCall(session, '/stepwire.Echo/Unary', new Uint8Array(0));
      expect(none['grpc-status']).toBe(String(GrpcStatus.INTERNAL));
      const client = connectGrpc(`http://127.0.0.1:${port}`);
      expect(await client.unary(echoService.Unary, { message: 'still here', n: 1 })).toEqual({
        message: 'still here',
        n: 1,
      });
      client.session.destroy();
    } finally {
      session.destroy();
    }
  });

  it('a connection lost mid-call ends the call UNAVAILABLE', async () => {
    const client = connectGrpc(`http://127.0.0.1:${port}`);
    const call = client.serverStream('/t.S/Hang', new Uint8Array(0));
    const it = call[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    client.session.socket.destroy();
    const e = await it.next().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(GrpcError);
    expect((e as GrpcError).code).toBe(GrpcStatus.UNAVAILABLE);
  });
});
