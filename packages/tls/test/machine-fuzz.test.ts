/**
 * Bad input never breaks the machines: random bytes, and real flights with bytes flipped
 * or cut, either make progress or end in an error event with an alert. Nothing throws.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsClient } from '../src/client.ts';
import { alertName } from '../src/codec/alert.ts';
import type { TlsOutput } from '../src/connection.ts';
import { nobleCrypto } from '../src/crypto/noble.ts';
import { TlsServer } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';

let id: TestIdentity;
beforeAll(() => {
  id = makeIdentity('stepwire.test', 'ec');
});
const crypto = nobleCrypto;
const newServer = () => new TlsServer({ crypto, signer: signerFor(id) });
const newClient = () =>
  new TlsClient({ crypto, serverName: 'stepwire.test', verifier: pinnedVerifier([id]) });
const joined = (o: TlsOutput) => Buffer.concat(o.data);

/**
 * An alert we send names an RFC 8446 alert and is in the output bytes. A received alert
 * carries whatever the peer sent (unknown ones are errors too, RFC 8446 §6); the fuzzer
 * found an alert record with description 4 (fuzz/regressions/tls-server/).
 */
function checkOutcome(out: TlsOutput): void {
  for (const e of out.events) {
    if (e.type !== 'error' || !e.sent) continue;
    expect(alertName(e.alert)).not.toMatch(/^alert\(/);
    expect(out.data.length).toBeGreaterThan(0);
  }
}

describe('the machines are total over hostile input', () => {
  it('random bytes into a server and into a client', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), (chunks) => {
        const s = newServer();
        const c = newClient();
        c.start(0);
        for (const ch of chunks) {
          checkOutcome(s.receive(ch, 0));
          checkOutcome(c.receive(ch, 0));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a ClientHello with one byte changed or cut short', () => {
    const hello = joined(newClient().start(0));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: hello.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        (i, x, cut) => {
          const b = new Uint8Array(cut ? hello.subarray(0, i) : hello);
          if (!cut) b[i] = b[i]! ^ x;
          const out = newServer().receive(b, 0);
          const err = out.events.find((e) => e.type === 'error');
          // Either a handshake flight or an alert comes back, or nothing (a short read); never an exception.
          if (err) expect(err.type === 'error' && err.sent).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("the server's first flight cut short or with one byte changed, delivered to the client that sent the hello", () => {
    // Control: the same exchange unmutated completes, so the assertion below can fail.
    const c0 = newClient();
    c0.receive(joined(newServer().receive(joined(c0.start(0)), 0)), 0);
    expect(c0.state).toBe('CONNECTED');
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (pick, x, cut) => {
        // The flight must reach the client whose hello (random, key shares) the server answered;
        // any other client could never finish and the check would hold vacuously.
        const c = newClient();
        const flight = joined(newServer().receive(joined(c.start(0)), 0));
        let i = pick % flight.length;
        // The ServerHello record's legacy_record_version (bytes 1-2) is ignored by receivers (RFC 8446 §5.1).
        if (!cut && (i === 1 || i === 2)) i = 3;
        const b = cut ? new Uint8Array(flight.subarray(0, i)) : new Uint8Array(flight);
        if (!cut) b[i] = (b[i] ?? 0) ^ x;
        const out = c.receive(b, 0);
        expect(c.state).not.toBe('CONNECTED');
        checkOutcome(out);
        // A cut flight leaves the client waiting for the rest; a changed byte ends in an alert or a wait.
        const err = out.events.find((e) => e.type === 'error');
        if (cut) expect(err).toBeUndefined();
        if (!err) expect(c.state).toMatch(/WAIT_/);
      }),
      { numRuns: 200 },
    );
  });

  it('a flipped byte in a live server flight is always an alert at the client', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pick, x) => {
        const c = newClient();
        const s = newServer();
        const flight = joined(s.receive(joined(c.start(0)), 0));
        // Skip the ServerHello record's legacy_record_version (bytes 1-2): receivers ignore it (RFC 8446 §5.1).
        let i = pick % flight.length;
        if (i === 1 || i === 2) i = 3;
        const b = new Uint8Array(flight);
        b[i] = b[i]! ^ x;
        const out = c.receive(b, 0);
        // Every byte of the flight is authenticated (transcript, AEAD) or checked (ServerHello fields).
        expect(c.state).not.toBe('CONNECTED');
        const err = out.events.find((e) => e.type === 'error');
        if (!err) expect(c.state).toMatch(/WAIT_/);
      }),
      { numRuns: 150 },
    );
  });
});
