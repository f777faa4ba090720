import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { fc, test as fcTest } from '@fast-check/vitest';
import { Prng } from '@stepwire/wire';
import { describe, expect } from 'vitest';
import { WebSocketServer } from '../../src/ws/server.ts';
import { arbitraryWebSocketMessage } from '../../src/ws/testing.ts';
import { connectWebSocket, type WebSocket } from '../../src/ws/websocket.ts';

/**
 * Two in-memory byte streams joined end to end, delivering each write in seeded random
 * pieces on later turns of the event loop: TCP's freedom to split and merge segments.
 */
function pipePair(seed: number): [Duplex, Duplex] {
  const prng = new Prng(seed);
  const make = (): Duplex & { peer?: Duplex } =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const peer = (this as Duplex & { peer?: Duplex }).peer;
        let o = 0;
        while (o < chunk.length) {
          const n = Math.min(chunk.length - o, 1 + prng.int(0, 40));
          const piece = chunk.subarray(o, o + n);
          setImmediate(() => peer?.push(piece));
          o += n;
        }
        setImmediate(cb);
      },
      final(cb) {
        const peer = (this as Duplex & { peer?: Duplex }).peer;
        setImmediate(() => peer?.push(null));
        cb();
      },
    });
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

describe('the WebSocket driver over a stream that splits every write at random', () => {
  fcTest.prop(
    [fc.array(arbitraryWebSocketMessage, { minLength: 1, maxLength: 8 }), fc.integer(), fc.boolean()],
    {
      numRuns: 40,
    },
  )(
    'every message echoes back whole and in order; the close handshake completes',
    async (messages, seed, deflate) => {
      const [clientSide, serverSide] = pipePair(seed);
      const wss = new WebSocketServer({ perMessageDeflate: deflate ? { threshold: 0 } : false });
      // The server reads the handshake itself off the stream, as an HTTP server would, then hands over.
      let head = Buffer.alloc(0);
      const onHead = (b: Buffer) => {
        head = Buffer.concat([head, b]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        serverSide.off('data', onHead);
        serverSide.pause();
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const rawHeaders = lines.slice(1).flatMap((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i), l.slice(i + 1).trim()];
        });
        wss.handleUpgrade(
          { method: 'GET', url: '/', httpVersion: '1.1', rawHeaders },
          serverSide,
          head.subarray(end + 4),
          (ws) => {
            ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(d, { binary: isBinary }));
          },
        );
        serverSide.resume();
      };
      serverSide.on('data', onHead);
      const ws: WebSocket = connectWebSocket({
        url: 'ws://peer.test/',
        socket: clientSide,
        perMessageDeflate: deflate ? { threshold: 0 } : false,
      });
      await once(ws, 'open');
      const got: { binary: boolean; data: Uint8Array }[] = [];
      const done = new Promise<void>((resolve) => {
        ws.on('message', (d: Buffer, isBinary: boolean) => {
          got.push({ binary: isBinary, data: new Uint8Array(d) });
          if (got.length === messages.length) resolve();
        });
      });
      for (const m of messages) ws.send(m.data, { binary: m.binary });
      await done;
      expect(got).toEqual(messages.map((m) => ({ binary: m.binary, data: m.data })));
      ws.close(1000, 'bye');
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      expect([code, reason.toString()]).toEqual([1000, 'bye']);
    },
  );
});
