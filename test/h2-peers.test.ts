/**
 * HTTP/2 interop over node:net on loopback, against independent implementations:
 * nghttp2's `nghttp`, `h2load` and `nghttpd`, curl, and python3-h2's hyperframe/hpack as a
 * raw-frame client that checks our answers to protocol violations. Every peer process is
 * bounded by a timeout and killed by PID.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer } from '../packages/http/src/h1/server.ts';
import {
  connect,
  createServer,
  type Http2Server,
  type Http2Stream,
} from '../packages/http/src/h2/internal.ts';

const BIG = Buffer.alloc(1 << 20, 'x');

function routes(stream: Http2Stream, headers: Record<string, unknown>): void {
  const path = String(headers[':path']);
  if (path === '/big') {
    stream.respond({ ':status': 200, 'content-length': BIG.length });
    stream.end(BIG);
  } else if (path === '/echo') {
    stream.respond({ ':status': 200 });
    stream.pipe(stream);
  } else {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('hello h2\n');
  }
}

let server: Http2Server;
let tcp: net.Server;
let port = 0;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stepwire-h2-'));
  server = createServer({}, (s, h) => routes(s, h));
  tcp = net.createServer((sock) => server.handle(sock));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  port = (tcp.address() as net.AddressInfo).port;
});

afterAll(() => {
  for (const s of server.sessions) s.destroy();
  tcp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('peers against our h2c server (prior knowledge)', () => {
  it('nghttp -nv: the exchange completes, frames as nghttp2 sees them', async () => {
    const r = await runPeer('nghttp', ['-nv', `http://127.0.0.1:${port}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/recv SETTINGS frame/);
    expect(r.stdout).toMatch(/recv \(stream_id=\d+\) :status: 200/);
    // The body and END_STREAM in one DATA frame.
    expect(r.stdout).toMatch(/recv DATA frame <length=9, flags=0x01, stream_id=\d+>/);
  });

  it('nghttp downloads 1 MB intact', async () => {
    const r = await runPeer('nghttp', [`http://127.0.0.1:${port}/big`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(BIG.length);
    expect(r.stdout).toBe(BIG.toString());
  });

  it('curl --http2-prior-knowledge: GET and a POST echo', async () => {
    const r = await runPeer('curl', [
      '-s',
      '--http2-prior-knowledge',
      '-w',
      '|%{http_version}|%{http_code}',
      `http://127.0.0.1:${port}/`,
    ]);
    expect(r.stdout).toBe('hello h2\n|2|200');
    const body = 'a'.repeat(100_000);
    const e = await runPeer(
      'curl',
      ['-s', '--http2-prior-knowledge', '--data-binary', '@-', `http://127.0.0.1:${port}/echo`],
      20_000,
      body,
    );
    expect(e.stdout).toBe(body);
  });

  it('h2load -n 2000 -c 4 -m 10: every request succeeds', async () => {
    const r = await runPeer(
      'h2load',
      ['-n', '2000', '-c', '4', '-m', '10', `http://127.0.0.1:${port}/`],
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/,
    );
    expect(r.stdout).toMatch(/status codes: 2000 2xx/);
  });
});

describe('our client against nghttpd', () => {
  it('GETs a file from nghttpd --no-tls', async () => {
    writeFileSync(join(dir, 'index.html'), 'from nghttpd\n');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const p = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const d = spawn('nghttpd', ['--no-tls', '-a', '127.0.0.1', '-d', dir, String(p)], { stdio: 'ignore' });
    try {
      // Wait (bounded) until it listens.
      for (let i = 0; i < 50; i++) {
        const ok = await new Promise<boolean>((r) => {
          const s = net.connect(p, '127.0.0.1', () => {
            s.destroy();
            r(true);
          });
          s.on('error', () => r(false));
        });
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const session = connect(`http://127.0.0.1:${p}`);
      const get = (path: string) =>
        new Promise<{ status: string; body: string }>((resolve, reject) => {
          const req = session.request({ ':path': path });
          let status = '';
          let body = '';
          req.on('response', (h) => {
            status = String(h[':status']);
          });
          req.on('data', (c: Buffer) => {
            body += c;
          });
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
        });
      expect(await get('/index.html')).toEqual({ status: '200', body: 'from nghttpd\n' });
      const many = await Promise.all(Array.from({ length: 10 }, () => get('/index.html')));
      expect(many.every((m) => m.status === '200' && m.body === 'from nghttpd\n')).toBe(true);
      expect((await get('/missing')).status).toBe('404');
      await new Promise<void>((r) => session.close(r));
    } finally {
      if (d.pid) process.kill(d.pid, 'SIGKILL');
    }
  });
});

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const p = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return p;
}

async function waitListening(p: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(p, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${p}`);
}

describe('nghttpx (nghttp2-proxy) as a reverse proxy with our server as its h2 backend', () => {
  it('curl over h2 and over HTTP/1.1 to nghttpx, nghttpx to us over h2; our client through nghttpx too', async () => {
    const front = await freePort();
    const proxy = spawn(
      'nghttpx',
      [
        '--conf=/dev/null',
        `-f127.0.0.1,${front};no-tls`,
        `-b127.0.0.1,${port};;proto=h2`,
        '--workers=1',
        '--accesslog-file=/dev/null',
        `--errorlog-file=${join(dir, 'nghttpx.log')}`,
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitListening(front);
      const h2 = await runPeer('curl', [
        '-s',
        '--http2-prior-knowledge',
        '-w',
        '|%{http_version}',
        `http://127.0.0.1:${front}/via-proxy`,
      ]);
      expect(h2.stdout).toBe('hello h2\n|2');
      const h1 = await runPeer('curl', ['-s', '-w', '|%{http_version}', `http://127.0.0.1:${front}/big`]);
      expect(h1.stdout).toBe(`${BIG.toString()}|1.1`);
      const session = connect(`http://127.0.0.1:${front}`);
      const bodies = await Promise.all(
        Array.from(
          { length: 10 },
          () =>
            new Promise<string>((resolve, reject) => {
              const req = session.request({ ':path': '/' });
              let b = '';
              req.on('data', (c: Buffer) => {
                b += c;
              });
              req.on('end', () => resolve(b));
              req.on('error', reject);
            }),
        ),
      );
      expect(bodies.every((b) => b === 'hello h2\n')).toBe(true);
      await new Promise<void>((r) => session.close(r));
    } finally {
      if (proxy.pid) process.kill(proxy.pid, 'SIGKILL');
    }
  });
});

describe('nghttpx in front of our HTTP/1.1 server, our h2 client connecting to it', () => {
  it('h2 from our client, HTTP/1.1 from nghttpx to our h1 server', async () => {
    const h1 = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => res.end(`h1 backend saw ${req.method} ${req.url} HTTP/${req.httpVersion}`));
    });
    const backend = net.createServer((s) => h1.handle(s));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const bport = (backend.address() as net.AddressInfo).port;
    const front = await freePort();
    const proxy = spawn(
      'nghttpx',
      [
        '--conf=/dev/null',
        `-f127.0.0.1,${front};no-tls`,
        `-b127.0.0.1,${bport}`,
        '--workers=1',
        '--accesslog-file=/dev/null',
        `--errorlog-file=${join(dir, 'nghttpx-h1.log')}`,
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitListening(front);
      const session = connect(`http://127.0.0.1:${front}`);
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          const req = session.request({ ':path': path });
          let b = '';
          req.on('data', (c: Buffer) => {
            b += c;
          });
          req.on('end', () => resolve(b));
          req.on('error', reject);
        });
      const answers = await Promise.all(['/a', '/b', '/c'].map(get));
      expect(answers).toEqual(['/a', '/b', '/c'].map((p) => `h1 backend saw GET ${p} HTTP/1.1`));
      await new Promise<void>((r) => session.close(r));
    } finally {
      if (proxy.pid) process.kill(proxy.pid, 'SIGKILL');
      h1.closeAllConnections?.();
      backend.close();
    }
  });
});

// A raw-frame client in Python (hyperframe + hpack from Debian's python3-h2): it writes the
// preface, SETTINGS, an ACK and a violation, then reports the first GOAWAY or RST_STREAM.
const PY = String.raw`
import socket, struct, sys, json
from hyperframe.frame import Frame
from hpack import Encoder
port, case = int(sys.argv[1]), sys.argv[2]
enc = Encoder()
def frame(t, flags, sid, payload):
    return struct.pack('>I', len(payload))[1:] + bytes([t, flags]) + struct.pack('>I', sid) + payload
def hdrs(sid, end=True, path='/'):
    block = enc.encode([(':method', 'GET'), (':scheme', 'http'), (':authority', 'x'), (':path', path)])
    return frame(1, 0x4 | (0x1 if end else 0), sid, block)
cases = {
  'data-on-stream-0': lambda: frame(0, 0, 0, b'abc'),
  'headers-even-id': lambda: hdrs(2),
  'window-overflow': lambda: frame(8, 0, 0, struct.pack('>I', 0x7fffffff)),
  'stream-window-overflow': lambda: hdrs(1, False) + frame(8, 0, 1, struct.pack('>I', 0x7fffffff)),
  'settings-bad-push': lambda: frame(4, 0, 0, struct.pack('>HI', 2, 2)),
  'settings-bad-window': lambda: frame(4, 0, 0, struct.pack('>HI', 4, 0x80000000)),
  'settings-bad-frame-size': lambda: frame(4, 0, 0, struct.pack('>HI', 5, 100)),
  'frame-too-large': lambda: hdrs(1, False) + frame(0, 0, 1, b'\0' * 16385),
  'data-after-end-stream': lambda: hdrs(1, True) + frame(0, 0, 1, b'abc'),
  'continuation-without-headers': lambda: frame(9, 0x4, 1, b''),
}
s = socket.create_connection(('127.0.0.1', port), timeout=10)
s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(4, 0, 0, b'') + frame(4, 1, 0, b''))
s.sendall(cases[case]())
buf = b''
result = {'frame': 'none'}
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            result = {'frame': 'eof'}
            break
        buf += chunk
        done = False
        while len(buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            f.parse_body(memoryview(buf[9:9 + length]))
            buf = buf[9 + length:]
            name = type(f).__name__
            if name == 'GoAwayFrame':
                result = {'frame': 'GOAWAY', 'code': f.error_code, 'last': f.last_stream_id}
                done = True
            elif name == 'RstStreamFrame':
                result = {'frame': 'RST_STREAM', 'code': f.error_code, 'stream': f.stream_id}
                done = True
            if done:
                break
        if done:
            break
except socket.timeout:
    result = {'frame': 'timeout'}
print(json.dumps(result))
`;

import { runPeer } from './support/peer-process.ts';

describe('python3-h2 (hyperframe/hpack) raw-frame client: our answers to violations', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['data-on-stream-0', 'DATA on stream 0 (RFC 9113 §6.1)', { frame: 'GOAWAY', code: 1 }],
    ['headers-even-id', 'HEADERS on an even stream id from a client (§5.1.1)', { frame: 'GOAWAY', code: 1 }],
    ['window-overflow', 'connection window overflow (§6.9.1)', { frame: 'GOAWAY', code: 3 }],
    [
      'stream-window-overflow',
      'stream window overflow (§6.9.1)',
      { frame: 'RST_STREAM', code: 3, stream: 1 },
    ],
    ['settings-bad-push', 'SETTINGS_ENABLE_PUSH = 2 (§6.5.2)', { frame: 'GOAWAY', code: 1 }],
    ['settings-bad-window', 'SETTINGS_INITIAL_WINDOW_SIZE = 2^31 (§6.5.2)', { frame: 'GOAWAY', code: 3 }],
    ['settings-bad-frame-size', 'SETTINGS_MAX_FRAME_SIZE = 100 (§6.5.2)', { frame: 'GOAWAY', code: 1 }],
    ['frame-too-large', 'a frame larger than SETTINGS_MAX_FRAME_SIZE (§4.2)', { frame: 'GOAWAY', code: 6 }],
    [
      'data-after-end-stream',
      'DATA after END_STREAM (§5.1 half-closed remote)',
      { frame: 'RST_STREAM', code: 5, stream: 1 },
    ],
    ['continuation-without-headers', 'CONTINUATION without HEADERS (§6.10)', { frame: 'GOAWAY', code: 1 }],
  ];
  for (const [key, title, want] of cases) {
    it(title, async () => {
      const script = join(dir, 'raw.py');
      writeFileSync(script, PY);
      const r = await runPeer('/usr/bin/python3', [script, String(port), key]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject(want);
    });
  }
});
