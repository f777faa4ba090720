import { fc, test as fcTest } from '@fast-check/vitest';
import { decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { acceptDeflate, checkDeflateResponse, offerDeflate } from '../../src/ws/deflate.ts';
import {
  checkClientHandshake,
  checkServerHandshake,
  decodeHandshakeResponse,
  encodeClientHandshake,
  formatExtensions,
  type HeaderList,
  parseExtensions,
  serverHandshakeHeaders,
} from '../../src/ws/handshake.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const good: HeaderList = [
  ['Host', 'server.example.com'],
  ['Upgrade', 'websocket'],
  ['Connection', 'keep-alive, Upgrade'],
  ['Sec-WebSocket-Key', KEY],
  ['Sec-WebSocket-Version', '13'],
  ['Origin', 'http://example.com'],
  ['Sec-WebSocket-Protocol', 'chat, superchat'],
];

describe('the server checks the opening handshake (RFC 6455 §4.2.1)', () => {
  it('accepts the §1.2 example request and reads its protocols and origin', () => {
    expect(checkClientHandshake('GET', '1.1', good)).toEqual({
      ok: true,
      key: KEY,
      protocols: ['chat', 'superchat'],
      origin: 'http://example.com',
      extensions: [],
    });
  });
  const without = (name: string) => good.filter(([n]) => n.toLowerCase() !== name);
  const cases: [string, string, string, HeaderList, number][] = [
    ['POST', 'POST', '1.1', good, 405],
    ['HTTP/1.0', 'GET', '1.0', good, 400],
    ['no Host', 'GET', '1.1', without('host'), 400],
    ['no Upgrade', 'GET', '1.1', without('upgrade'), 400],
    ['no Connection: Upgrade', 'GET', '1.1', [...without('connection'), ['Connection', 'keep-alive']], 400],
    ['version 8', 'GET', '1.1', [...without('sec-websocket-version'), ['Sec-WebSocket-Version', '8']], 426],
    ['no key', 'GET', '1.1', without('sec-websocket-key'), 400],
    [
      'a key of 15 bytes',
      'GET',
      '1.1',
      [...without('sec-websocket-key'), ['Sec-WebSocket-Key', 'AAAAAAAAAAAAAAAAAAAA']],
      400,
    ],
    ['two keys', 'GET', '1.1', [...good, ['Sec-WebSocket-Key', KEY]], 400],
  ];
  for (const [name, method, version, headers, status] of cases) {
    it(`${name} → ${status}`, () => {
      expect(checkClientHandshake(method, version, headers)).toMatchObject({ ok: false, status });
    });
  }
});

describe('the client checks the answer (RFC 6455 §4.1)', () => {
  const offer = { key: KEY, protocols: ['chat'], extensionNames: ['permessage-deflate'] };
  it('accepts the §1.3 answer', () => {
    expect(checkServerHandshake(101, serverHandshakeHeaders({ key: KEY, protocol: 'chat' }), offer)).toEqual({
      ok: true,
      protocol: 'chat',
      extensions: [],
    });
  });
  it('refuses a wrong accept, an unoffered protocol or extension, a non-101', () => {
    const h = serverHandshakeHeaders({ key: KEY });
    expect(checkServerHandshake(200, h, offer).ok).toBe(false);
    expect(checkServerHandshake(101, serverHandshakeHeaders({ key: 'x' }), offer).ok).toBe(false);
    expect(checkServerHandshake(101, serverHandshakeHeaders({ key: KEY, protocol: 'other' }), offer).ok).toBe(
      false,
    );
    expect(
      checkServerHandshake(101, serverHandshakeHeaders({ key: KEY, extensions: 'x-foo' }), offer).ok,
    ).toBe(false);
  });
  it('reads a response head byte by byte until the empty line', () => {
    const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nxyz');
    for (let i = 0; i < head.length - 3; i++)
      expect(decodeHandshakeResponse(head.subarray(0, i))).toBeUndefined();
    expect(decodeHandshakeResponse(head)).toMatchObject({ status: 101, length: head.length - 3 });
  });
  it('writes the request of §1.2', () => {
    const text = Buffer.from(
      encodeClientHandshake({ host: 'server.example.com', path: '/chat', key: KEY, protocols: ['chat'] }),
    ).toString();
    expect(text).toBe(
      'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
    );
  });
});

describe('permessage-deflate negotiation (RFC 7692 §7.1)', () => {
  const offers = (s: string) => parseExtensions([s]);
  it('the server answers the first acceptable offer and honours server_* limits', () => {
    const r = acceptDeflate(
      offers('permessage-deflate; server_max_window_bits=10; server_no_context_takeover'),
      {},
    );
    expect(r?.params).toEqual({
      serverNoContextTakeover: true,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 15,
    });
    expect(formatExtensions([r?.response ?? { name: '', params: [] }])).toBe(
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=10',
    );
  });
  it('declines offers with unknown, repeated or bad parameters, and takes the next', () => {
    expect(acceptDeflate(offers('permessage-deflate; foo'), {})).toBeUndefined();
    expect(
      acceptDeflate(offers('permessage-deflate; server_no_context_takeover; server_no_context_takeover'), {}),
    ).toBeUndefined();
    expect(acceptDeflate(offers('permessage-deflate; server_max_window_bits=16'), {})).toBeUndefined();
    expect(acceptDeflate(offers('permessage-deflate; client_max_window_bits=abc'), {})).toBeUndefined();
    const r = acceptDeflate(offers('permessage-deflate; foo, permessage-deflate; client_max_window_bits'), {
      clientMaxWindowBits: 12,
    });
    expect(r?.params.clientMaxWindowBits).toBe(12);
  });
  it('limits the client window only when the client said it supports the parameter (§7.1.2.2)', () => {
    expect(
      acceptDeflate(offers('permessage-deflate'), { clientMaxWindowBits: 10 })?.params.clientMaxWindowBits,
    ).toBe(15);
  });
  it('the client refuses answers outside its offer', () => {
    const offered = { serverMaxWindowBits: 10 };
    expect(offerDeflate(offered)).toEqual({
      name: 'permessage-deflate',
      params: [
        ['server_max_window_bits', '10'],
        ['client_max_window_bits', true],
      ],
    });
    expect(
      checkDeflateResponse(offers('permessage-deflate; server_max_window_bits=12')[0]!, offered),
    ).toMatch(/above/);
    expect(checkDeflateResponse(offers('permessage-deflate; x=1')[0]!, offered)).toMatch(/unknown/);
    expect(
      checkDeflateResponse(offers('permessage-deflate; server_max_window_bits=9')[0]!, offered),
    ).toMatchObject({
      serverMaxWindowBits: 9,
    });
    expect(checkDeflateResponse(offers('permessage-deflate')[0]!, { serverNoContextTakeover: true })).toMatch(
      /not agreed/,
    );
  });
});

describe('handshake readers on arbitrary input', () => {
  fcTest.prop([fc.uint8Array({ maxLength: 400 })])(
    'decodeHandshakeResponse returns, waits, or throws ParseError',
    (b) => {
      expect(decodesOrParseError(decodeHandshakeResponse, b)).toBe(true);
    },
  );
  fcTest.prop([fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 })])(
    'parseExtensions returns or throws ParseError',
    (values) => {
      expect(decodesOrParseError(() => parseExtensions(values), new Uint8Array(0))).toBe(true);
    },
  );
  fcTest.prop([
    fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })), { maxLength: 8 }),
  ])('checkClientHandshake answers every header list with ok or a status, never an exception', (headers) => {
    const r = checkClientHandshake('GET', '1.1', headers);
    expect(r.ok || [400, 405, 426].includes(r.status)).toBe(true);
  });
});
