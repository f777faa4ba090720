/**
 * A property over real handshakes between our client and our server: one byte of one flight
 * (ClientHello; ServerHello + encrypted server flight; client Finished) is changed on the wire.
 * Every run must end in one of:
 * - both sides complete with identical secrets (the byte did not matter: only the ignored
 *   legacy_record_version of an unprotected record may do that, RFC 8446 §5.1);
 * - an alert raised by one side, naming an RFC 8446 alert, sent on the wire, and received as
 *   that same alert by the peer (or the peer detects a failure of its own);
 * - a stall where a length field now announces more bytes than will ever come (TLS has no timer;
 *   the transport's end or timeout decides, see negative-record's truncation tests).
 * Never an exception out of receive(), never both sides complete with different keys.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient } from '../src/client.ts';
import { alertName } from '../src/codec/alert.ts';
import { ContentType } from '../src/codec/common.ts';
import type { TlsEvent } from '../src/connection.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { TlsServer } from '../src/server.ts';
import { completed, firstError, type TestPki, testPki } from './helpers/mitm.ts';
import { pump } from './helpers/pump.ts';

const NOW = Date.now();
const crypto = nobleCrypto;
let pki: TestPki;
beforeAll(() => {
  pki = testPki(NOW);
});

const FLIGHTS = ['ClientHello', 'server flight', 'client Finished'] as const;

interface Mutation {
  flight: number;
  /** Byte position in the flight, taken modulo its length. */
  pick: number;
  xor: number;
}

interface Run {
  events: { client: TlsEvent[]; server: TlsEvent[] };
  logs: { client: string[]; server: string[] };
  /** Where the byte landed: the record (type from its header) and the offset inside it. */
  hit?: { recordType: number; offset: number; recordLength: number; before: number; after: number };
  /** Bytes each side wrote, per flight, for the alert check. */
  wrote: { from: 'a' | 'b'; bytes: Uint8Array }[];
}

/** Flight lengths of a clean handshake, to spread the picks over the bytes that exist. */
function flightLengths(): number[] {
  const lengths = [0, 0, 0];
  handshake({ flight: -1, pick: 0, xor: 0 }, (flight, bytes) => {
    if (flight < 3) lengths[flight]! += bytes.length;
  });
  return lengths;
}

function handshake(m: Mutation, observe?: (flight: number, bytes: Uint8Array) => void): Run {
  const logs = { client: [] as string[], server: [] as string[] };
  const client = new TlsClient({
    crypto,
    serverName: 'stepwire.test',
    verifier: pki.serverVerifier(),
    keyLog: (l) => logs.client.push(l),
  });
  const server = new TlsServer({ crypto, signer: pki.signer(pki.leaf), keyLog: (l) => logs.server.push(l) });
  let flight = -1;
  let last: 'a' | 'b' | undefined;
  let seenInFlight = 0;
  const run: Run = { events: { client: [], server: [] }, logs, wrote: [] };
  const tap = (from: 'a' | 'b', bytes: Uint8Array): Uint8Array => {
    if (from !== last) {
      flight++;
      last = from;
      seenInFlight = 0;
    }
    run.wrote.push({ from, bytes });
    observe?.(flight, bytes);
    const start = seenInFlight;
    seenInFlight += bytes.length;
    if (flight !== m.flight || run.hit) return bytes;
    const pos = m.pick - start;
    if (pos < 0 || pos >= bytes.length) return bytes;
    // Each write of our machines is exactly one record here (no compatibility mode, small certificates).
    const out = bytes.slice();
    out[pos] = out[pos]! ^ m.xor;
    run.hit = {
      recordType: bytes[0]!,
      offset: pos,
      recordLength: bytes.length,
      before: bytes[pos]!,
      after: out[pos]!,
    };
    return out;
  };
  const ev = pump(client, server, client.start(NOW), { now: NOW, tap });
  run.events = { client: ev.a, server: ev.b };
  return run;
}

/** The length fields a changed byte can grow so that the receiver waits for more. */
function grewALength(hit: NonNullable<Run['hit']>, flight: number): boolean {
  const grew = hit.after > hit.before;
  // Record header length (RFC 8446 §5.1), bytes 3-4 of any record.
  if (hit.offset === 3 || hit.offset === 4) return grew || hit.offset === 3;
  // The handshake header's 24-bit length of the unprotected ClientHello or ServerHello (bytes 6-8 of the record).
  if (hit.recordType === ContentType.handshake && flight <= 1 && hit.offset >= 6 && hit.offset <= 8)
    return true;
  return false;
}

describe('one changed byte anywhere in a real handshake', () => {
  it('ends in identical keys, an alert, or a stall on a grown length; never an exception', () => {
    const lengths = flightLengths();
    expect(lengths.every((n) => n > 0)).toBe(true);
    const tally = { completed: 0, alert: 0, stall: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (flight, n, xor) => {
          const m = { flight, pick: n % lengths[flight]!, xor };
          const run = handshake(m);
          const { client, server } = run.events;
          const where = `${FLIGHTS[flight]} byte ${m.pick} ^ 0x${xor.toString(16)} ${JSON.stringify(run.hit)}`;
          // Every error names a real RFC 8446 alert.
          for (const e of [...client, ...server]) {
            if (e.type === 'error') expect(alertName(e.alert), where).not.toMatch(/^alert\(/);
          }
          const bothDone = completed(client) && completed(server);
          if (bothDone) {
            // Never both complete with different keys: the five secrets each side logged agree.
            expect([...run.logs.client].sort(), where).toEqual([...run.logs.server].sort());
          }
          const errC = firstError(client);
          const errS = firstError(server);
          if (errC || errS) {
            tally.alert++;
            // One side detects and sends the alert; the peer reads that same alert (RFC 8446 §6),
            // unless it detected a failure itself (when the transcripts, and so the keys, diverged,
            // neither can open the other's protected alert: both send bad_record_mac).
            const [sender, receiver] = errC?.sent ? [errC, errS] : [errS, errC];
            expect(sender?.sent, `no side sent an alert: ${where}`).toBe(true);
            expect(receiver, `the peer was left without an error: ${where}`).toBeDefined();
            if (!receiver!.sent)
              expect(receiver!.alertName, `the peer got another alert: ${where}`).toBe(sender!.alertName);
            // A side that raised an alert put it on the wire (an alert record: unprotected type 21
            // or protected type 23), as the last thing it wrote.
            for (const [err, from] of [
              [errC, 'a'],
              [errS, 'b'],
            ] as const) {
              if (!err?.sent) continue;
              const mine = run.wrote.filter((w) => w.from === from);
              const lastRecord = mine[mine.length - 1]?.bytes;
              expect(
                lastRecord?.[0] === ContentType.alert || lastRecord?.[0] === ContentType.application_data,
                where,
              ).toBe(true);
            }
            return;
          }
          if (bothDone) {
            tally.completed++;
            // Only the ignored legacy_record_version minor byte of an unprotected record may be changed harmlessly.
            expect(run.hit, where).toBeDefined();
            expect(run.hit!.recordType !== ContentType.application_data && run.hit!.offset === 2, where).toBe(
              true,
            );
            return;
          }
          tally.stall++;
          expect(run.hit && grewALength(run.hit, flight), `stall without a grown length: ${where}`).toBe(
            true,
          );
        },
      ),
      { numRuns: 400, seed: 0x5eed },
    );
    // Seed 0x5eed, 400 runs: 392 alerts, 7 stalls on grown lengths, 1 harmless record-version change.
    // Almost every byte of a TLS 1.3 handshake is authenticated or checked.
    expect(tally.alert).toBeGreaterThan(tally.completed * 20);
  });

  it('the same mutations over every flight byte-for-byte on a sample of positions (no exception, no silent success)', () => {
    // A deterministic sweep: every 7th byte of every flight, XOR 0x80.
    const lengths = flightLengths();
    let silent = 0;
    let missed = 0;
    for (let flight = 0; flight < 3; flight++) {
      for (let pick = 0; pick < lengths[flight]!; pick += 7) {
        const run = handshake({ flight, pick, xor: 0x80 });
        // Every handshake signs afresh: an ECDSA signature is a byte or two shorter now and
        // then, so a pick near the end of the server's flight can fall past it. Nothing was
        // changed then, and a completed handshake proves nothing either way.
        if (!run.hit) {
          missed++;
          continue;
        }
        const err = firstError(run.events.client) ?? firstError(run.events.server);
        const both = completed(run.events.client) && completed(run.events.server);
        if (!err && both) {
          expect([...run.logs.client].sort()).toEqual([...run.logs.server].sort());
          silent++;
        }
      }
    }
    // The only harmless change is an unprotected record's version minor byte (offset 2 of the
    // ClientHello or ServerHello record), and picks 0, 7, 14, ... never land there.
    expect(silent).toBe(0);
    expect(missed).toBeLessThanOrEqual(1);
  });
});
