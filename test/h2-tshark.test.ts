/**
 * Wireshark as an independent HTTP/2 dissector: an h2 exchange between our client and
 * server on our TCP over the simulated network is written to a pcap, and tshark (with
 * its own HPACK decoder) must read every frame type, stream id and header we sent, and
 * flag nothing as malformed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { connect, createServer } from '../packages/http/src/h2/internal.ts';
import { tsharkFields, tsharkProblems } from './support/tshark.ts';

describe('tshark dissects our h2 frames', () => {
  it('SETTINGS, WINDOW_UPDATE, HEADERS (HPACK), DATA and trailers as sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stepwire-h2-tshark-'));
    const pcap = join(dir, 'h2.pcap');
    const sim = new Sim({ seed: 7, pcapPath: pcap });
    try {
      const server = createServer({ clock: sim.clock }, (stream, headers) => {
        stream.respond(
          { ':status': 200, 'x-served-path': String(headers[':path']) },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'done' }));
        stream.end('0123456789');
      });
      const tcpServer = sim.b.tcp.createServer({ allowHalfOpen: true });
      tcpServer.on('connection', (s) => server.handle(s));
      tcpServer.listen(80);
      const session = connect('http://b.test', {
        clock: sim.clock,
        createConnection: () => sim.a.tcp.connect({ host: sim.b.ipv4, port: 80 }),
      });
      const done = Promise.all(
        ['/one', '/two'].map(
          (path) =>
            new Promise<void>((resolve, reject) => {
              const req = session.request({ ':path': path, 'user-agent': 'stepwire-test' });
              req.resume();
              req.on('end', () => resolve());
              req.on('error', reject);
            }),
        ),
      );
      await sim.run(done);
      session.close();
      await sim.run(new Promise<void>((r) => session.once('close', () => r())));
      tcpServer.close();
    } finally {
      sim.close();
    }
    try {
      const decode = ['-d', 'tcp.port==80,http2'];
      const rows = tsharkFields(
        pcap,
        ['http2.type', 'http2.streamid', 'http2.header.name', 'http2.header.value'],
        {
          filter: 'http2',
          extra: decode,
        },
      );
      const types = new Set(rows.flatMap((r) => (r['http2.type'] ?? '').split(',')));
      // 0 DATA, 1 HEADERS, 4 SETTINGS, 7 GOAWAY, 8 WINDOW_UPDATE
      for (const t of ['0', '1', '4', '7', '8']) expect(types, `frame type ${t}`).toContain(t);
      const names = rows.flatMap((r) => (r['http2.header.name'] ?? '').split(','));
      const values = rows.flatMap((r) => (r['http2.header.value'] ?? '').split(','));
      for (const n of [
        ':method',
        ':path',
        ':authority',
        'user-agent',
        ':status',
        'x-served-path',
        'x-trailer',
      ])
        expect(names).toContain(n);
      for (const v of ['/one', '/two', 'b.test', 'stepwire-test', '200', 'done']) expect(values).toContain(v);
      expect(new Set(rows.flatMap((r) => (r['http2.streamid'] ?? '').split(',')))).toEqual(
        new Set(['0', '1', '3']),
      );
      expect(tsharkProblems(pcap, decode)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
