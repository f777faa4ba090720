import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { fromHex, VirtualClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, Opcode, type WebSocketFrame } from '../../src/ws/frame.ts';
import { WebSocketServer } from '../../src/ws/server.ts';
import { connectWebSocket, type WebSocket } from '../../src/ws/websocket.ts';

/** Our server behind node:http's 'upgrade', spoken to with hand-written bytes over node:net (autobahn-style cases). */
let server: http.Server;
let port = 0;
const received: string[] = [];

beforeAll(async () => {
  server = http.createServer((_q, r) => r.end());
  const wss = new WebSocketServer({
    server,
    maxPayload: 1000,
    verifyClient: ({ origin }) => origin !== 'https://evil.example',
  });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {});
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      received.push(d.toString());
      ws.send(d, { binary: isBinary });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
function handshake(extra: string[] = [], version = '13'): string {
  return [
    'GET /chat HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${KEY}`,
    `Sec-WebSocket-Version: ${version}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** Send bytes, collect everything until the server closes the TCP connection. */
async function exchange(...parts: (string | Uint8Array)[]): Promise<Buffer> {
  const s = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  s.on('data', (b) => chunks.push(b));
  for (const p of parts) s.write(p);
  await once(s, 'close');
  return Buffer.concat(chunks);
}

const frame = (f: Partial<WebSocketFrame> & { opcode: number; payload: Uint8Array }) =>
  encodeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, maskingKey: fromHex('a1b2c3d4'), ...f });

/** The frames after the 101 head. */
function afterHead(b: Buffer): Buffer {
  const end = b.indexOf('\r\n\r\n');
  expect(b.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
  expect(b.subarray(0, end).toString()).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  return b.subarray(end + 4);
}

describe('hostile frames get a Close with the right code and a closed connection', () => {
  const cases: [string, Uint8Array, number][] = [
    [
      'unmasked client frame',
      encodeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: 1, payload: fromHex('61') }),
      1002,
    ],
    ['invalid UTF-8 text', frame({ opcode: Opcode.Text, payload: fromHex('f8a1a1a1a1') }), 1007],
    ['control frame of 126 bytes', frame({ opcode: Opcode.Ping, payload: new Uint8Array(126) }), 1002],
    ['reserved opcode 0x5', frame({ opcode: 5, payload: new Uint8Array(0) }), 1002],
    ['RSV1 without an extension', frame({ rsv1: true, opcode: Opcode.Text, payload: fromHex('61') }), 1002],
    ['frame over maxPayload', frame({ opcode: Opcode.Binary, payload: new Uint8Array(1001) }), 1009],
  ];
  for (const [name, bad, code] of cases) {
    it(`${name} → ${code}`, async () => {
      const got = afterHead(
        await exchange(handshake(), frame({ opcode: Opcode.Text, payload: Buffer.from('ok') }), bad),
      );
      // The good message is echoed (unmasked, RFC 6455 §5.1), then a Close with the code.
      expect(got.subarray(0, 4)).toEqual(Buffer.from('\x81\x02ok', 'latin1'));
      expect(got[4]).toBe(0x88);
      expect(got.readUInt16BE(6)).toBe(code);
    });
  }

  it('a Close from the client is echoed and the server closes TCP (RFC 6455 §7.1.1)', async () => {
    const got = afterHead(
      await exchange(handshake(), frame({ opcode: Opcode.Close, payload: fromHex('0bb8') })),
    );
    expect(got).toEqual(Buffer.from(fromHex('88020bb8')));
  });

  it('the server keeps serving after the hostile connections', async () => {
    const ws = connectWebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws, 'open');
    ws.send('still here');
    const [d] = (await once(ws, 'message')) as [Buffer];
    expect(d.toString()).toBe('still here');
    ws.close();
    await once(ws, 'close');
  });
});

describe('opening handshake refusals (RFC 6455 §4.2.1, §4.4)', () => {
  it('an unsupported version gets 426 and Sec-WebSocket-Version: 13', async () => {
    const r = (await exchange(handshake([], '8'))).toString();
    expect(r).toMatch(/^HTTP\/1\.1 426 /);
    expect(r).toContain('Sec-WebSocket-Version: 13');
  });
  it('a bad key gets 400', async () => {
    expect((await exchange(handshake().replace(KEY, 'short'))).toString()).toMatch(/^HTTP\/1\.1 400 /);
  });
  it('a refused Origin gets 403', async () => {
    expect((await exchange(handshake(['Origin: https://evil.example']))).toString()).toMatch(
      /^HTTP\/1\.1 403 /,
    );
  });
  it('our client reports a refusal with the status', async () => {
    const ws = connectWebSocket(`ws://127.0.0.1:${port}/`, { origin: 'https://evil.example' });
    const [err] = (await once(ws, 'error')) as [{ statusCode?: number }];
    expect(err.statusCode).toBe(403);
    await once(ws, 'close');
  });
  it('our client rejects a wrong Sec-WebSocket-Accept', async () => {
    const fake = net.createServer((s) => {
      s.once('data', () =>
        s.write(
          'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n',
        ),
      );
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    const ws = connectWebSocket(`ws://127.0.0.1:${(fake.address() as AddressInfo).port}/`);
    const [err] = (await once(ws, 'error')) as [Error];
    expect(err.message).toMatch(/Sec-WebSocket-Accept/);
    fake.close();
  });
});

describe('the close timer', () => {
  it('a peer that never answers our Close is dropped after closeTimeout, with 1006', async () => {
    const clock = new VirtualClock();
    // An in-memory stream whose far end reads and never answers.
    const silent = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    const answer = (head: string) => silent.push(Buffer.from(head));
    const ws = connectWebSocket({
      url: 'ws://peer.test/',
      socket: silent,
      clock,
      randomBytes: () => new Uint8Array(16),
    });
    const key = Buffer.alloc(16).toString('base64');
    const { acceptKey } = await import('../../src/ws/handshake.ts');
    answer(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    await once(ws, 'open');
    ws.close(1000);
    expect(ws.readyState).toBe(2);
    expect(ws.stats?.timersArmed).toBe(1);
    clock.advance(29_999);
    expect(silent.destroyed).toBe(false);
    clock.advance(1);
    const [code] = await once(ws, 'close');
    expect(code).toBe(1006);
    expect(ws.stats?.timersArmed).toBe(0);
  });
});

describe('frames in the same packet as the handshake (the upgrade head bytes)', () => {
  it('our HTTP/1.1 server hands them over and they are answered', async () => {
    const { createHttpServer } = await import('../../src/h1/server.ts');
    const ours = createHttpServer((_q, r) => r.end());
    new WebSocketServer({ server: ours }).on('connection', (ws: WebSocket) =>
      ws.on('message', (d: Buffer) => ws.send(`got ${d.toString()}`)),
    );
    ours.listen(0, '127.0.0.1');
    await once(ours, 'listening');
    const p = (ours.address() as AddressInfo).port;
    const s = net.connect({ host: '127.0.0.1', port: p });
    const chunks: Buffer[] = [];
    s.on('data', (b) => chunks.push(b));
    // One write: the handshake, a text frame, a Close.
    s.write(
      Buffer.concat([
        Buffer.from(handshake().replace(`127.0.0.1:${port}`, `127.0.0.1:${p}`)),
        frame({ opcode: Opcode.Text, payload: Buffer.from('early') }),
        frame({ opcode: Opcode.Close, payload: fromHex('03e8') }),
      ]),
    );
    await once(s, 'close');
    const got = afterHead(Buffer.concat(chunks));
    expect(got).toEqual(
      Buffer.concat([Buffer.from('\x81\x09got early', 'latin1'), Buffer.from(fromHex('880203e8'))]),
    );
    ours.close();
  });
});

describe('client API details', () => {
  it('close() while CONNECTING abandons the handshake: error, then close 1006', async () => {
    const ws = connectWebSocket(`ws://127.0.0.1:${port}/`);
    expect(ws.readyState).toBe(0);
    ws.close();
    const [err] = (await once(ws, 'error')) as [Error];
    expect(err.message).toMatch(/closed before the connection was established/);
    const [code] = await once(ws, 'close');
    expect(code).toBe(1006);
    expect(ws.readyState).toBe(3);
  });

  it("binaryType 'arraybuffer' delivers ArrayBuffers; url names the target", async () => {
    const ws = connectWebSocket(`ws://127.0.0.1:${port}/path?q=1`);
    expect(ws.url).toBe(`ws://127.0.0.1:${port}/path?q=1`);
    ws.binaryType = 'arraybuffer';
    await once(ws, 'open');
    ws.send(new Uint8Array([1, 2, 3]));
    const [data, isBinary] = (await once(ws, 'message')) as [ArrayBuffer, boolean];
    expect(isBinary).toBe(true);
    expect(data).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(data)]).toEqual([1, 2, 3]);
    ws.close();
    await once(ws, 'close');
  });
});
