/**
 * qlog (JSON-SEQ, draft-ietf-quic-qlog-main-schema / quic-events) from `fetch --http3 --qlog
 * FILE` and `serve --qlog DIR`: a fetch from our serve over loopback writes one client file
 * and one server file per connection; every record is RS + one JSON object + LF, the first is
 * the header, and each event has the fields its name requires.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT, runFetch } from '../packages/cli/src/commands/fetch.ts';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';
import { serveLoopback } from '../packages/cli/src/services/loopback.ts';
import { QLOG_RECORD_SEPARATOR } from '../packages/quic/src/qlog.ts';

const dir = mkdtempSync(join(tmpdir(), 'sw-quic-qlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PACKET_TYPES = ['initial', 'handshake', '0RTT', '1RTT', 'retry', 'version_negotiation'];

type Rec = Record<string, unknown>;

/** Checks the JSON-SEQ framing (RFC 7464) and returns the records. */
function records(text: string): Rec[] {
  expect(text.startsWith(QLOG_RECORD_SEPARATOR)).toBe(true);
  const parts = text.split(QLOG_RECORD_SEPARATOR).slice(1);
  return parts.map((p) => {
    expect(p.endsWith('\n')).toBe(true);
    const v = JSON.parse(p) as unknown;
    expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
    return v as Rec;
  });
}

function checkTrace(text: string, vantage: 'client' | 'server'): Rec[] {
  const [header, ...events] = records(text);
  expect(header).toMatchObject({
    qlog_version: expect.any(String),
    qlog_format: 'JSON-SEQ',
    trace: { vantage_point: { type: vantage }, common_fields: { time_format: 'relative' } },
  });
  let last = 0;
  for (const e of events) {
    expect(typeof e.time).toBe('number');
    expect(e.time as number).toBeGreaterThanOrEqual(last);
    last = e.time as number;
    expect(typeof e.name).toBe('string');
    expect(e.name as string).toMatch(/^quic:[a-z_]+$/);
    const data = e.data as Rec;
    expect(typeof data).toBe('object');
    if (e.name === 'quic:packet_sent' || e.name === 'quic:packet_received') {
      const h = data.header as Rec;
      expect(PACKET_TYPES).toContain(h.packet_type);
      expect(Number.isInteger(h.packet_number)).toBe(true);
      expect(Array.isArray(data.frames)).toBe(true);
      for (const f of data.frames as Rec[]) {
        expect(f.frame_type as string).toMatch(/^[a-z_]+$/);
        checkFrameFields(f);
      }
      if (h.packet_type !== '1RTT') {
        expect(h.dcid as string).toMatch(/^[0-9a-f]*$/);
        expect(h.scid as string).toMatch(/^[0-9a-f]*$/);
      }
    } else if (e.name === 'quic:connection_state_updated') {
      expect(typeof data.new).toBe('string');
    } else if (e.name === 'quic:recovery_metrics_updated') {
      expect(Object.keys(data).length).toBeGreaterThan(0);
      for (const v of Object.values(data)) expect(typeof v).toBe('number');
    }
  }
  return events;
}

const names = (events: Rec[]) => new Set(events.map((e) => e.name));
/** The fields qvis draws, as draft-ietf-quic-qlog-quic-events §8.13 names them. */
function checkFrameFields(f: Rec): void {
  const uint = (v: unknown) => expect(Number.isSafeInteger(v) && (v as number) >= 0).toBe(true);
  switch (f.frame_type) {
    case 'stream':
      for (const k of ['stream_id', 'offset', 'length']) uint(f[k]);
      expect(typeof f.fin).toBe('boolean');
      break;
    case 'crypto':
      uint(f.offset);
      uint(f.length);
      break;
    case 'ack': {
      const ranges = f.acked_ranges as number[][];
      expect(ranges.length).toBeGreaterThan(0);
      // Ascending, disjoint: [smallest] or [smallest, largest].
      let prev = -2;
      for (const r of ranges) {
        expect(r.length === 1 || (r.length === 2 && r[0]! < r[1]!)).toBe(true);
        expect(r[0]!).toBeGreaterThan(prev + 1);
        prev = r[r.length - 1]!;
      }
      break;
    }
    case 'max_data':
    case 'max_stream_data':
    case 'max_streams':
      uint(f.maximum);
      break;
    case 'new_connection_id':
      uint(f.sequence_number);
      expect(f.connection_id as string).toMatch(/^[0-9a-f]+$/);
      break;
  }
}

const frameTypes = (events: Rec[], name: string) =>
  events
    .filter((e) => e.name === name)
    .flatMap((e) => ((e.data as Rec).frames as Rec[]).map((f) => f.frame_type));

describe('qlog from fetch --http3 --qlog and serve --qlog', () => {
  it('one client file and one server file per connection, every record well formed', async () => {
    const identity = ephemeralServeIdentity();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, identity.caPem ?? '');
    const qlogDir = join(dir, 'server-qlogs');
    const services = await serveLoopback({
      address: '127.0.0.1',
      httpPort: 0,
      httpsPort: 0,
      identity,
      qlogDir,
    });
    try {
      const port = services.find((s) => s.name === 'h3')?.port ?? 0;
      const clientFiles: string[] = [];
      for (const path of ['/', '/bytes/60000']) {
        const file = join(dir, `client-${clientFiles.length}.sqlog`);
        clientFiles.push(file);
        const code = await runFetch(
          `https://stepwire.test:${port}${path}`,
          { http3: true, cacert: ca, resolve: [`stepwire.test:${port}:127.0.0.1`], qlog: file },
          { out: () => {}, err: () => {}, errIsTty: false, outIsTty: false },
        );
        expect(code).toBe(EXIT.ok);
      }
      for (const f of clientFiles) {
        const events = checkTrace(readFileSync(f, 'utf8'), 'client');
        expect(names(events)).toEqual(
          new Set([
            'quic:packet_sent',
            'quic:packet_received',
            'quic:connection_state_updated',
            'quic:recovery_metrics_updated',
          ]),
        );
        expect(frameTypes(events, 'quic:packet_received')).toContain('handshake_done');
        expect(frameTypes(events, 'quic:packet_sent')).toContain('crypto');
        expect(frameTypes(events, 'quic:packet_received')).toContain('stream');
      }
      // Let the server see the closes, then stop it: each connection's file is complete.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      for (const s of services.reverse()) s.close();
    }
    const serverFiles = readdirSync(qlogDir).filter((f) => f.endsWith('_server.sqlog'));
    expect(serverFiles).toHaveLength(2);
    for (const f of serverFiles) {
      const events = checkTrace(readFileSync(join(qlogDir, f), 'utf8'), 'server');
      expect(frameTypes(events, 'quic:packet_sent')).toContain('handshake_done');
      expect(frameTypes(events, 'quic:packet_received')[0]).toBe('crypto');
      // The file is named by the client's first DCID, which the first packet received carries.
      const first = events.find((e) => e.name === 'quic:packet_received');
      const header = ((first?.data ?? {}) as Rec).header as Rec | undefined;
      expect(`${header?.dcid}_server.sqlog`).toBe(f);
    }
  });
});
