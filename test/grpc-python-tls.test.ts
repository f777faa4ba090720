/**
 * gRPC over TLS: grpcio's secure channel (ALPN h2, certificate checked against a CA made
 * here with openssl) calling our gRPC server on node:tls. grpcio refuses a server that does
 * not negotiate h2 by ALPN, so this also checks that our server is reachable that way.
 * Every peer process is bounded by a timeout and killed by its PID.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addEchoService, GrpcServer, GrpcStatus } from '../packages/http/src/grpc/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'stepwire-grpc-tls-'));

function run(
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
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
      reject(new Error(`${cmd} could not run (${e.message})`));
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const CLIENT = `
import grpc, json, sys
ser = lambda b: b
de = lambda b: b
creds = grpc.ssl_channel_credentials(root_certificates=open(sys.argv[2], "rb").read())
ch = grpc.secure_channel("localhost:" + sys.argv[1], creds)
u = ch.unary_unary("/stepwire.Echo/Unary", request_serializer=ser, response_deserializer=de)
# EchoMessage { message: "tls", n: 3 } encoded by hand: field 1 (LEN) and field 2 (VARINT).
r = u(b"\\x0a\\x03tls\\x10\\x03", timeout=5)
print(json.dumps({"hex": r.hex()}))
try:
    u(b"\\x0a\\x0ferror:ABORTED:x", timeout=5)
except grpc.RpcError as e:
    print(json.dumps({"code": e.code().name, "details": e.details()}))
ch.close()
`;

let server: tls.Server;
let grpc: GrpcServer;
let port = 0;
beforeAll(async () => {
  const gen = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost',
    '-keyout',
    'key.pem',
    '-out',
    'cert.pem',
  ]);
  if (gen.code !== 0) throw new Error(`openssl: ${gen.stderr}`);
  writeFileSync(join(dir, 'client.py'), CLIENT);
  grpc = addEchoService(new GrpcServer());
  server = tls.createServer(
    {
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
      ALPNProtocols: ['h2'],
    },
    (socket) => grpc.handle(socket),
  );
  port = await new Promise<number>((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)),
  );
});
afterAll(() => {
  for (const s of grpc.http2.sessions) s.destroy();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('grpcio secure channel against our server on node:tls', () => {
  it('a unary call and an error status over TLS with ALPN h2', async () => {
    const r = await run('/usr/bin/python3', [join(dir, 'client.py'), String(port), join(dir, 'cert.pem')]);
    if (r.code !== 0) throw new Error(`client.py exited ${r.code}: ${r.stderr}`);
    const [ok, err] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(ok?.hex).toBe('0a03746c731003');
    expect(err).toEqual({ code: 'ABORTED', details: 'x' });
    expect(grpc.stats.statuses[GrpcStatus.OK]).toBe(1);
  });
});
