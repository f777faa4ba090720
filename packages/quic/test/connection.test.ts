import { bytesEqual, concatBytes, Prng } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { connectionPair, runPair } from './connection-helpers.ts';

describe('QuicConnection with a fake TLS', () => {
  it('handshakes, confirms, and carries a bidirectional stream both ways', () => {
    const { client, server, prng } = connectionPair(1);
    const events: string[] = [];
    let echoed = new Uint8Array(0);
    let clientDone = false;
    const body = new Prng(7).bytes(50_000);
    runPair(
      client,
      server,
      prng,
      {},
      () => clientDone,
      (side, e, now) => {
        events.push(`${side}:${e.type}`);
        if (side === 'a' && e.type === 'connected') {
          const id = client.openStream('bidi');
          client.write(id, body, true);
        }
        if (side === 'b' && e.type === 'stream-data') server.write(e.id, e.data, e.fin);
        if (side === 'a' && e.type === 'stream-data') {
          echoed = concatBytes(echoed, e.data);
          if (e.fin) clientDone = true;
        }
        void now;
      },
    );
    expect(events).toContain('a:connected');
    expect(events).toContain('b:connected');
    expect(events).toContain('b:stream-opened');
    expect(bytesEqual(echoed, body)).toBe(true);
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(server.isHandshakeConfirmed).toBe(true);
  });
});
