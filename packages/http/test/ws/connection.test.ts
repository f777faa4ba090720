import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { WebSocketConnection, type WebSocketEvent } from '../../src/ws/connection.ts';
import { type DeflateParams, PerMessageDeflate } from '../../src/ws/deflate.ts';
import { encodeFrame, Opcode, type WebSocketFrame } from '../../src/ws/frame.ts';
import { arbitrarySplits, arbitraryWebSocketMessage, splitBytes } from '../../src/ws/testing.ts';

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const seededMask = (seed: number) => {
  const prng = new Prng(seed);
  return () => prng.bytes(4);
};

/** Client frames as a peer would send them: masked (RFC 6455 §5.3). */
function clientFrame(f: Partial<WebSocketFrame> & { opcode: number; payload: Uint8Array }): Uint8Array {
  return encodeFrame({
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    maskingKey: fromHex('01020304'),
    ...f,
  });
}

function closeOf(events: WebSocketEvent[]) {
  return events.find((e) => e.type === 'close');
}

/** The code of the Close frame a server wrote. */
function sentCloseCode(out: Uint8Array[]): number | undefined {
  const b = concat(out);
  const at = b.length - 1;
  for (let i = 0; i < at; i++) {
    if (b[i] === 0x88) return b[i + 1] === 0 ? undefined : ((b[i + 2] as number) << 8) | (b[i + 3] as number);
  }
  return undefined;
}

describe('messages across a client/server pair', () => {
  fcTest.prop([
    fc.array(fc.tuple(arbitraryWebSocketMessage, fc.array(fc.nat(400), { maxLength: 3 }), fc.boolean()), {
      maxLength: 8,
    }),
    arbitrarySplits(12),
    fc.integer(),
  ])(
    'every message arrives whole and in order, however fragmented and split, with pings between fragments',
    (messages, splits, seed) => {
      const client = new WebSocketConnection({ role: 'client', maskingKey: seededMask(seed) });
      const server = new WebSocketConnection({ role: 'server' });
      for (const [m, cuts, ping] of messages) {
        // Fragment at sorted cut points (RFC 6455 §5.4), a ping between fragments (§5.4: control frames may be interleaved).
        const points = [...new Set(cuts.map((c) => Math.min(c, m.data.length)))].sort((a, b) => a - b);
        let o = 0;
        for (const p of points) {
          if (p <= o || p >= m.data.length) continue;
          client.send(m.data.subarray(o, p), { binary: m.binary, fin: false });
          if (ping) client.ping(new Uint8Array([1, 2, 3]));
          o = p;
        }
        client.send(m.data.subarray(o), { binary: m.binary, fin: true });
      }
      const wire = concat(client.takeOutput());
      const events: WebSocketEvent[] = [];
      for (const chunk of splitBytes(wire, splits)) events.push(...server.receive(chunk));
      const got = events.filter((e) => e.type === 'message');
      expect(got).toEqual(messages.map(([m]) => ({ type: 'message', data: m.data, binary: m.binary })));
      expect(events.filter((e) => e.type === 'error')).toEqual([]);
      // Each ping got its pong, unmasked (server to client).
      const pongs = client.receive(concat(server.takeOutput())).filter((e) => e.type === 'pong');
      expect(pongs.length).toBe(events.filter((e) => e.type === 'ping').length);
    },
  );

  it('the closing handshake: code and reason reach the peer, both end CLOSED (RFC 6455 §7.1)', () => {
    const client = new WebSocketConnection({ role: 'client' });
    const server = new WebSocketConnection({ role: 'server' });
    client.close(4001, 'bye');
    expect(client.state).toBe('CLOSING');
    const atServer = server.receive(concat(client.takeOutput()));
    expect(closeOf(atServer)).toEqual({ type: 'close', code: 4001, reason: 'bye', wasClean: true });
    expect(server.state).toBe('CLOSED');
    expect(server.closeTransport).toBe(true);
    const atClient = client.receive(concat(server.takeOutput()));
    expect(closeOf(atClient)).toMatchObject({ code: 4001, wasClean: true });
    expect(client.state).toBe('CLOSED');
    // No data after Close (RFC 6455 §5.5.1).
    expect(client.send('late')).toBe(false);
  });

  it('a Close without a body is reported as 1005 and answered with an empty Close', () => {
    const server = new WebSocketConnection({ role: 'server' });
    const ev = server.receive(clientFrame({ opcode: Opcode.Close, payload: new Uint8Array(0) }));
    expect(closeOf(ev)).toMatchObject({ code: 1005, wasClean: true });
    expect(concat(server.takeOutput())).toEqual(fromHex('8800'));
  });

  it('the transport ending before any Close gives 1006', () => {
    const server = new WebSocketConnection({ role: 'server' });
    expect(closeOf(server.transportClosed())).toMatchObject({ code: 1006, wasClean: false });
  });

  it('text split inside a UTF-8 sequence across fragments is accepted', () => {
    const server = new WebSocketConnection({ role: 'server' });
    const euro = fromHex('e282ac'); // €
    const ev = [
      ...server.receive(clientFrame({ fin: false, opcode: Opcode.Text, payload: euro.subarray(0, 1) })),
      ...server.receive(clientFrame({ opcode: Opcode.Continuation, payload: euro.subarray(1) })),
    ];
    expect(ev).toEqual([{ type: 'message', data: euro, binary: false }]);
  });
});

describe('hostile input is answered with the right close code', () => {
  const cases: { name: string; bytes: () => Uint8Array; code: number; max?: number }[] = [
    {
      name: 'an unmasked frame from a client (RFC 6455 §5.1) → 1002',
      bytes: () =>
        encodeFrame({
          fin: true,
          rsv1: false,
          rsv2: false,
          rsv3: false,
          opcode: Opcode.Text,
          payload: new Uint8Array([0x61]),
        }),
      code: 1002,
    },
    {
      name: 'invalid UTF-8 in text (§8.1) → 1007',
      bytes: () =>
        clientFrame({ opcode: Opcode.Text, payload: fromHex('cebae1bdb9cf83cebcceb5eda080656469746564') }),
      code: 1007,
    },
    {
      name: 'invalid UTF-8 in a first fragment fails before the message ends → 1007',
      bytes: () => clientFrame({ fin: false, opcode: Opcode.Text, payload: fromHex('48c0') }),
      code: 1007,
    },
    {
      name: 'text ending inside a UTF-8 sequence → 1007',
      bytes: () => clientFrame({ opcode: Opcode.Text, payload: fromHex('e282') }),
      code: 1007,
    },
    {
      name: 'a ping of 126 bytes (§5.5) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Ping, payload: new Uint8Array(126) }),
      code: 1002,
    },
    {
      name: 'a fragmented ping (§5.5) → 1002',
      bytes: () => clientFrame({ fin: false, opcode: Opcode.Ping, payload: new Uint8Array(1) }),
      code: 1002,
    },
    {
      name: 'reserved opcode 0x3 (§5.2) → 1002',
      bytes: () => clientFrame({ opcode: 0x3, payload: new Uint8Array(0) }),
      code: 1002,
    },
    {
      name: 'reserved control opcode 0xB (§5.2) → 1002',
      bytes: () => clientFrame({ opcode: 0xb, payload: new Uint8Array(0) }),
      code: 1002,
    },
    {
      name: 'RSV1 without an extension (§5.2) → 1002',
      bytes: () => clientFrame({ rsv1: true, opcode: Opcode.Text, payload: new Uint8Array(0) }),
      code: 1002,
    },
    {
      name: 'RSV2 (§5.2) → 1002',
      bytes: () => clientFrame({ rsv2: true, opcode: Opcode.Binary, payload: new Uint8Array(0) }),
      code: 1002,
    },
    {
      name: 'RSV3 (§5.2) → 1002',
      bytes: () => clientFrame({ rsv3: true, opcode: Opcode.Binary, payload: new Uint8Array(0) }),
      code: 1002,
    },
    {
      name: 'a continuation with no message (§5.4) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Continuation, payload: new Uint8Array(1) }),
      code: 1002,
    },
    {
      name: 'a new text frame inside a fragmented message (§5.4) → 1002',
      bytes: () =>
        concat([
          clientFrame({ fin: false, opcode: Opcode.Text, payload: new Uint8Array([0x61]) }),
          clientFrame({ opcode: Opcode.Text, payload: new Uint8Array([0x62]) }),
        ]),
      code: 1002,
    },
    {
      name: 'a Close body of one byte (§5.5.1) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Close, payload: new Uint8Array([3]) }),
      code: 1002,
    },
    {
      name: 'close code 1005 on the wire (§7.4.1) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Close, payload: fromHex('03ed') }),
      code: 1002,
    },
    {
      name: 'close code 999 (§7.4.2) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Close, payload: fromHex('03e7') }),
      code: 1002,
    },
    {
      name: 'close code 2000 (reserved, §7.4.2) → 1002',
      bytes: () => clientFrame({ opcode: Opcode.Close, payload: fromHex('07d0') }),
      code: 1002,
    },
    {
      name: 'a Close reason that is not UTF-8 → 1007',
      bytes: () => clientFrame({ opcode: Opcode.Close, payload: fromHex('03e8ff') }),
      code: 1007,
    },
    {
      name: 'a frame over maxPayload → 1009',
      bytes: () => clientFrame({ opcode: Opcode.Binary, payload: new Uint8Array(101) }),
      code: 1009,
      max: 100,
    },
    {
      name: 'a message over maxPayload across fragments → 1009',
      bytes: () =>
        concat([
          clientFrame({ fin: false, opcode: Opcode.Binary, payload: new Uint8Array(60) }),
          clientFrame({ opcode: Opcode.Continuation, payload: new Uint8Array(60) }),
        ]),
      code: 1009,
      max: 100,
    },
    {
      name: 'a 64-bit length with the top bit set (§5.2) → 1002',
      bytes: () => fromHex('82ff8000000000000000'),
      code: 1002,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const server = new WebSocketConnection({ role: 'server', ...(c.max ? { maxPayload: c.max } : {}) });
      const ev = server.receive(c.bytes());
      expect(ev.find((e) => e.type === 'error')).toMatchObject({ code: c.code });
      expect(closeOf(ev)).toMatchObject({ code: c.code, wasClean: false });
      expect(server.state).toBe('CLOSED');
      expect(server.closeTransport).toBe(true);
      expect(sentCloseCode(server.takeOutput())).toBe(c.code);
      // Nothing more is read once failed.
      expect(server.receive(clientFrame({ opcode: Opcode.Text, payload: new Uint8Array([0x61]) }))).toEqual(
        [],
      );
    });
  }

  it('a masked frame from a server (RFC 6455 §5.1) → 1002 at the client', () => {
    const client = new WebSocketConnection({ role: 'client' });
    const ev = client.receive(clientFrame({ opcode: Opcode.Text, payload: new Uint8Array([0x61]) }));
    expect(closeOf(ev)).toMatchObject({ code: 1002 });
  });

  fcTest.prop([fc.uint8Array({ maxLength: 200 }), arbitrarySplits(6)])(
    'arbitrary bytes never throw and leave a state',
    (b, splits) => {
      const server = new WebSocketConnection({ role: 'server', maxPayload: 1000 });
      for (const chunk of splitBytes(b, splits)) server.receive(chunk);
      expect(['OPEN', 'CLOSING', 'CLOSED']).toContain(server.state);
    },
  );
});

describe('permessage-deflate (RFC 7692)', () => {
  const params: DeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };

  it('§7.2.3.1 and §7.2.3.2: "Hello" twice, the second sharing the LZ77 window', () => {
    const client = new WebSocketConnection({
      role: 'client',
      deflate: new PerMessageDeflate(params, 'client', 0),
    });
    // Server-to-client frames exactly as printed in RFC 7692 §7.2.3.2.
    const ev = client.receive(fromHex('c107f248cdc9c90700c105f200110000'));
    expect(ev).toEqual([
      { type: 'message', data: new TextEncoder().encode('Hello'), binary: false },
      { type: 'message', data: new TextEncoder().encode('Hello'), binary: false },
    ]);
  });

  it('§7.2.3.1: our compressor produces the RFC bytes for "Hello"', () => {
    const server = new WebSocketConnection({
      role: 'server',
      deflate: new PerMessageDeflate(params, 'server', 0),
    });
    server.send('Hello');
    expect(concat(server.takeOutput())).toEqual(fromHex('c107f248cdc9c90700'));
  });

  it('§7.2.3.3: an uncompressed (stored) block', () => {
    const client = new WebSocketConnection({
      role: 'client',
      deflate: new PerMessageDeflate(params, 'client', 0),
    });
    expect(client.receive(fromHex('c10b000500faff48656c6c6f00'))).toEqual([
      { type: 'message', data: new TextEncoder().encode('Hello'), binary: false },
    ]);
  });

  for (const takeover of [true, false]) {
    fcTest.prop([fc.array(arbitraryWebSocketMessage, { maxLength: 6 }), arbitrarySplits(8)])(
      `messages round-trip compressed (context takeover ${takeover})`,
      (messages, splits) => {
        const p = { ...params, clientNoContextTakeover: !takeover, serverNoContextTakeover: !takeover };
        const client = new WebSocketConnection({
          role: 'client',
          deflate: new PerMessageDeflate(p, 'client', 0),
        });
        const server = new WebSocketConnection({
          role: 'server',
          deflate: new PerMessageDeflate(p, 'server', 0),
        });
        for (const m of messages) client.send(m.data, { binary: m.binary });
        const events: WebSocketEvent[] = [];
        for (const chunk of splitBytes(concat(client.takeOutput()), splits))
          events.push(...server.receive(chunk));
        expect(events).toEqual(messages.map((m) => ({ type: 'message', ...m })));
      },
    );
  }

  it('a decompression bomb stops at maxPayload with 1009', () => {
    const p = params;
    const client = new WebSocketConnection({
      role: 'client',
      deflate: new PerMessageDeflate(p, 'client', 0),
    });
    const server = new WebSocketConnection({
      role: 'server',
      maxPayload: 10_000,
      deflate: new PerMessageDeflate(p, 'server', 0),
    });
    client.send(new Uint8Array(1_000_000));
    const wire = concat(client.takeOutput());
    expect(wire.length).toBeLessThan(10_000);
    expect(closeOf(server.receive(wire))).toMatchObject({ code: 1009 });
  });

  it('corrupt deflate data → 1007', () => {
    const server = new WebSocketConnection({
      role: 'server',
      deflate: new PerMessageDeflate(params, 'server', 0),
    });
    expect(
      closeOf(server.receive(clientFrame({ rsv1: true, opcode: Opcode.Binary, payload: fromHex('ffffff') }))),
    ).toMatchObject({
      code: 1007,
    });
  });
});
