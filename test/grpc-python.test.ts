/**
 * gRPC interop with Python's grpcio (Debian python3-grpcio, C-core underneath) over
 * node:net on loopback, h2c (insecure channel), in both directions:
 * - grpcio's generic client (channel.unary_unary etc. with hand-built EchoMessage bytes
 *   from python3-protobuf's runtime descriptors) calls our server's stepwire.Echo: the four
 *   call kinds, metadata, a deadline that expires and an error status with a message;
 * - our client calls a grpcio server (grpc.method_handlers_generic_handler) for the same.
 * Every Python process is bounded by a timeout and killed by its PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../packages/cli/src/services/http-app.ts';
import {
  addEchoService,
  connectGrpc,
  type EchoMessage,
  echoService,
  type GrpcClient,
  GrpcError,
  GrpcServer,
  GrpcStatus,
} from '../packages/http/src/grpc/index.ts';
import { runPeer } from './support/peer-process.ts';

const PY = '/usr/bin/python3';
const dir = mkdtempSync(join(tmpdir(), 'stepwire-grpc-'));

/** EchoMessage from python3-protobuf's runtime descriptors, no generated code (as ours). */
const ECHO_PB = `
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
fdp = descriptor_pb2.FileDescriptorProto(name="stepwire/echo.proto", package="stepwire", syntax="proto3")
m = fdp.message_type.add(name="EchoMessage")
m.field.add(name="message", number=1, type=9, label=1, json_name="message")
m.field.add(name="n", number=2, type=5, label=1, json_name="n")
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
_desc = pool.FindMessageTypeByName("stepwire.EchoMessage")
_f = message_factory.MessageFactory(pool)
Echo = _f.GetPrototype(_desc) if hasattr(_f, "GetPrototype") else message_factory.GetMessageClass(_desc)
ser = lambda m: m.SerializeToString()
de = Echo.FromString
`;

const CLIENT = `${ECHO_PB}
import grpc, json, sys, time
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
grpc.channel_ready_future(ch).result(timeout=5)
def out(**kw): print(json.dumps(kw), flush=True)
u = ch.unary_unary("/stepwire.Echo/Unary", request_serializer=ser, response_deserializer=de)
r, call = u.with_call(Echo(message="hello", n=7), timeout=5, metadata=[("x-who", "py")])
out(case="unary", message=r.message, n=r.n, initial=dict(call.initial_metadata()))
ss = ch.unary_stream("/stepwire.Echo/ServerStream", request_serializer=ser, response_deserializer=de)
out(case="server_stream", ns=[m.n for m in ss(Echo(message="s", n=5), timeout=5)])
cs = ch.stream_unary("/stepwire.Echo/ClientStream", request_serializer=ser, response_deserializer=de)
r = cs(iter([Echo(message=c) for c in "abcd"]), timeout=5)
out(case="client_stream", message=r.message, n=r.n)
bd = ch.stream_stream("/stepwire.Echo/Bidi", request_serializer=ser, response_deserializer=de)
out(case="bidi", messages=[m.message for m in bd(iter([Echo(message="b%d" % i, n=i) for i in range(4)]), timeout=5)])
big = u(Echo(message="x" * 100000, n=1), timeout=5)
out(case="big", length=len(big.message))
gz = u(Echo(message="g" * 50000, n=9), timeout=5, compression=grpc.Compression.Gzip)
out(case="gzip", length=len(gz.message), n=gz.n)
try:
    u(Echo(message="sleep:5000"), timeout=0.3)
    out(case="deadline", code="OK")
except grpc.RpcError as e:
    out(case="deadline", code=e.code().name)
try:
    u(Echo(message="error:NOT_FOUND:no such thing 100% \\u00fcn\\u00efc\\u00f6d\\u00e9"), timeout=5)
    out(case="error", code="OK")
except grpc.RpcError as e:
    out(case="error", code=e.code().name, details=e.details())
import queue
q = queue.Queue()
def reqs():
    while True:
        m = q.get()
        if m is None:
            return
        yield m
call = bd(reqs(), timeout=10)
q.put(Echo(message="c1"))
first = next(call)
call.cancel()
q.put(None)
out(case="cancel", first=first.message, code=call.code().name)
try:
    ch.unary_unary("/stepwire.Echo/Nope")(b"", timeout=5)
except grpc.RpcError as e:
    out(case="unimplemented", code=e.code().name)
ch.close()
`;

const SERVER = `${ECHO_PB}
import grpc, sys, time
from concurrent import futures
def unary(req, ctx):
    md = dict(ctx.invocation_metadata())
    if req.message.startswith("error:"):
        _, name, details = req.message.split(":", 2)
        ctx.abort(getattr(grpc.StatusCode, name), details)
    if req.message.startswith("sleep:"):
        end = time.time() + int(req.message[6:]) / 1000
        while time.time() < end and ctx.is_active():
            time.sleep(0.01)
    ctx.set_trailing_metadata((("x-echo", md.get("x-who", "")),))
    return Echo(message=req.message, n=req.n)
def server_stream(req, ctx):
    for i in range(req.n):
        yield Echo(message=req.message, n=i)
def client_stream(reqs, ctx):
    parts = [r.message for r in reqs]
    return Echo(message="".join(parts), n=len(parts))
def bidi(reqs, ctx):
    for r in reqs:
        yield Echo(message=r.message, n=r.n)
handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, request_deserializer=de, response_serializer=ser),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, request_deserializer=de, response_serializer=ser),
    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, request_deserializer=de, response_serializer=ser),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi, request_deserializer=de, response_serializer=ser),
}
# Responses gzip-compressed (the client says it accepts gzip), so our client inflates them.
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), compression=grpc.Compression.Gzip)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("stepwire.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination(timeout=60)
`;

writeFileSync(join(dir, 'client.py'), CLIENT);
writeFileSync(join(dir, 'server.py'), SERVER);

/** Runs a Python program with a hard time limit; killed by its PID when it overruns. */
function runPython(
  script: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PY, [join(dir, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(
        new Error(`${PY} could not run (${e.message}); scripts/install-peers.sh installs python3-grpcio`),
      );
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('grpcio client against our server', () => {
  let tcp: net.Server;
  let server: GrpcServer;
  let port = 0;
  beforeAll(async () => {
    server = new GrpcServer({ maxReceiveMessageSize: 1 << 20 });
    addEchoService(server);
    tcp = net.createServer((sock) => server.handle(sock));
    port = await new Promise<number>((r) =>
      tcp.listen(0, '127.0.0.1', () => r((tcp.address() as net.AddressInfo).port)),
    );
  });
  afterAll(() => {
    for (const s of server.http2.sessions) s.destroy();
    tcp.close();
  });

  it('unary, server-streaming, client-streaming, bidi, gzip, a deadline that expires, cancellation, an error status', async () => {
    const r = await runPython('client.py', [String(port)]);
    if (r.code !== 0) throw new Error(`client.py exited ${r.code}: ${r.stderr}`);
    const out = new Map<string, Record<string, unknown>>();
    for (const line of r.stdout.trim().split('\n')) {
      const o = JSON.parse(line) as Record<string, unknown>;
      out.set(String(o.case), o);
    }
    expect(out.get('unary')).toMatchObject({ message: 'hello', n: 7 });
    expect(out.get('server_stream')).toMatchObject({ ns: [0, 1, 2, 3, 4] });
    expect(out.get('client_stream')).toMatchObject({ message: 'abcd', n: 4 });
    expect(out.get('bidi')).toMatchObject({ messages: ['b0', 'b1', 'b2', 'b3'] });
    expect(out.get('big')).toMatchObject({ length: 100000 });
    expect(out.get('gzip')).toMatchObject({ length: 50000, n: 9 });
    expect(out.get('deadline')).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(out.get('error')).toMatchObject({ code: 'NOT_FOUND', details: 'no such thing 100% ünïcödé' });
    expect(out.get('cancel')).toMatchObject({ first: 'c1', code: 'CANCELLED' });
    expect(out.get('unimplemented')).toMatchObject({ code: 'UNIMPLEMENTED' });
    // The expired call and the cancelled one ended on our side too (the deadline by our timer
    // or grpcio's RST_STREAM, the cancel by its RST_STREAM CANCEL).
    await expect
      .poll(
        () =>
          (server.stats.statuses[GrpcStatus.DEADLINE_EXCEEDED] ?? 0) +
          (server.stats.statuses[GrpcStatus.CANCELLED] ?? 0),
      )
      .toBe(2);
    expect(server.stats.statuses[GrpcStatus.OK]).toBe(6);
  });
});

describe("grpcio client against serve's HTTP app: web routes and gRPC on one port", () => {
  it('grpcio calls stepwire.Echo over h2c while curl gets the page over HTTP/1.1 from the same port', async () => {
    const app = createHttpApp();
    const tcp = net.createServer((sock) => app.handle(sock));
    const port = await new Promise<number>((r) =>
      tcp.listen(0, '127.0.0.1', () => r((tcp.address() as net.AddressInfo).port)),
    );
    try {
      const r = await runPython('client.py', [String(port)]);
      if (r.code !== 0) throw new Error(`client.py exited ${r.code}: ${r.stderr}`);
      const out = new Map<string, Record<string, unknown>>();
      for (const line of r.stdout.trim().split('\n')) {
        const o = JSON.parse(line) as Record<string, unknown>;
        out.set(String(o.case), o);
      }
      expect(out.get('unary')).toMatchObject({ message: 'hello', n: 7 });
      expect(out.get('bidi')).toMatchObject({ messages: ['b0', 'b1', 'b2', 'b3'] });
      expect(out.get('deadline')).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      const page = await runPeer('curl', ['-s', '--http1.1', `http://127.0.0.1:${port}/`]);
      expect(page.stdout).toMatch(/^Hello from stepwire/);
    } finally {
      app.closeAllConnections();
      app.close();
      tcp.close();
    }
  });
});

describe('our client against a grpcio server', () => {
  let py: ChildProcess;
  let client: GrpcClient;
  let killTimer: NodeJS.Timeout;
  let pyPort = 0;
  beforeAll(async () => {
    py = spawn(PY, [join(dir, 'server.py')], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Bounded: the server exits by itself after 60 s, and is killed by PID after 90 s or in afterAll.
    killTimer = setTimeout(() => {
      if (py.pid && py.exitCode === null) process.kill(py.pid, 'SIGKILL');
    }, 90_000);
    killTimer.unref();
    let stderr = '';
    py.stderr?.on('data', (d) => {
      stderr += d;
    });
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      py.stdout?.on('data', (d) => {
        buf += d;
        const line = buf.split('\n')[0];
        if (buf.includes('\n') && line) resolve(Number(line));
      });
      py.on('error', (e) => reject(new Error(`${PY} could not run: ${e.message}`)));
      py.on('exit', (code) => reject(new Error(`server.py exited ${code}: ${stderr}`)));
    });
    pyPort = port;
    client = connectGrpc(`http://127.0.0.1:${port}`);
  });
  afterAll(() => {
    client?.session.destroy();
    clearTimeout(killTimer);
    if (py.pid && py.exitCode === null) process.kill(py.pid, 'SIGKILL');
  });

  it('the four call kinds', async () => {
    expect(await client.unary(echoService.Unary, { message: 'hi', n: 3 })).toEqual({ message: 'hi', n: 3 });
    const ns: number[] = [];
    for await (const m of client.serverStream(echoService.ServerStream, { message: 's', n: 4 })) ns.push(m.n);
    expect(ns).toEqual([0, 1, 2, 3]);
    async function* parts(): AsyncGenerator<EchoMessage> {
      for (const c of 'wxyz') yield { message: c, n: 0 };
    }
    expect(await client.clientStream(echoService.ClientStream, parts())).toEqual({ message: 'wxyz', n: 4 });
    const got: string[] = [];
    for await (const m of client.bidi(
      echoService.Bidi,
      [1, 2, 3].map((i) => ({ message: `b${i}`, n: i })),
    ))
      got.push(m.message);
    expect(got).toEqual(['b1', 'b2', 'b3']);
  });

  it('metadata in, trailing metadata out; a large message', async () => {
    const call = client.call(echoService.Unary, [{ message: 'y'.repeat(200_000), n: 1 }], {
      metadata: { 'x-who': 'stepwire' },
      timeout: 5000,
    });
    expect((await call.response()).message.length).toBe(200_000);
    expect((await call.status).trailers['x-echo']).toBe('stepwire');
  });

  it("gzip both ways: our compressed requests, grpcio's compressed responses", async () => {
    const gz = connectGrpc(`http://127.0.0.1:${pyPort}`, { compression: 'gzip' });
    try {
      const text = 'q'.repeat(100_000);
      const call = gz.call(echoService.Unary, [{ message: text, n: 5 }]);
      expect(await call.response()).toEqual({ message: text, n: 5 });
      expect((await call.status).code).toBe(GrpcStatus.OK);
    } finally {
      gz.session.destroy();
    }
  });

  it('an error status with a percent-encoded message', async () => {
    const e = await client
      .unary(echoService.Unary, { message: 'error:PERMISSION_DENIED:nope 50% ✓', n: 0 })
      .then(
        () => undefined,
        (x: unknown) => x,
      );
    expect(e).toBeInstanceOf(GrpcError);
    expect((e as GrpcError).code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect((e as GrpcError).details).toBe('nope 50% ✓');
  });

  it('a deadline that expires: DEADLINE_EXCEEDED, and the connection serves the next call', async () => {
    const e = await client.unary(echoService.Unary, { message: 'sleep:3000', n: 0 }, { timeout: 200 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect((e as GrpcError).code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(await client.unary(echoService.Unary, { message: 'after', n: 2 })).toEqual({
      message: 'after',
      n: 2,
    });
  });
});
