/**
 * Stored sessions (session-ticket.ts): the codec's laws (round trip, arbitrary bytes) and
 * its use through the API: a ticket kept as bytes resumes later and reports the first
 * connection's verdict.
 */
import { once } from 'node:events';
import { duplexPair } from 'node:stream';
import { fc, test } from '@fast-check/vitest';
import { ParseError } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { connect, createServer, decodeSession, encodeSession, type SecureSocket } from '../src/api.ts';
import type { SessionTicket } from '../src/connection.ts';
import { createStepwireCredentials } from '../src/pki/index.ts';
import { decodeStoredSession, encodeStoredSession, type StoredSession } from '../src/session-ticket.ts';

const latin1String = (max: number) =>
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: max }).map((a) => String.fromCharCode(...a));

const arbitraryStoredSession: fc.Arbitrary<StoredSession> = fc.record({
  ticket: fc.record(
    {
      ticket: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      psk: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      cipherSuite: fc.integer({ min: 0, max: 0xffff }),
      receivedAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      lifetimeSeconds: fc.integer({ min: 0, max: 0xffffffff }),
      ageAdd: fc.integer({ min: 0, max: 0xffffffff }),
      maxEarlyDataSize: fc.integer({ min: 0, max: 0xffffffff }),
      serverName: latin1String(255),
      alpn: latin1String(255).filter((s) => s.length > 0),
    },
    {
      requiredKeys: [
        'ticket',
        'psk',
        'cipherSuite',
        'receivedAt',
        'lifetimeSeconds',
        'ageAdd',
        'maxEarlyDataSize',
      ],
    },
  ),
  authorized: fc.boolean(),
});

describe('stored session codec', () => {
  test.prop([arbitraryStoredSession], { numRuns: 300 })('decode(encode(x)) equals x', (s) => {
    expect(decodeStoredSession(encodeStoredSession(s))).toEqual(s);
  });

  // Random bytes mostly fail at the version byte; valid encodings with one byte changed or cut short go deeper.
  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc
      .tuple(arbitraryStoredSession, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean())
      .map(([st, at, v, cut]) => {
        const b = encodeStoredSession(st);
        if (cut) return b.subarray(0, at % b.length);
        b[at % b.length] = v;
        return b;
      }),
  );
  test.prop([hostile], { numRuns: 500 })('arbitrary bytes decode or throw ParseError', (b) => {
    expect(decodesOrParseError(decodeStoredSession, b)).toBe(true);
  });

  it('refuses a version it does not know, trailing bytes and a truncated ticket, naming the field', () => {
    const good = encodeStoredSession({
      ticket: {
        ticket: Uint8Array.of(1, 2, 3),
        psk: new Uint8Array(32),
        cipherSuite: 0x1301,
        receivedAt: 1_700_000_000_000,
        lifetimeSeconds: 7200,
        ageAdd: 5,
        maxEarlyDataSize: 0,
        serverName: 'stepwire.test',
      },
      authorized: true,
    });
    const v2 = good.slice();
    v2[0] = 2;
    expect(() => decodeStoredSession(v2)).toThrow(ParseError);
    expect(() => decodeStoredSession(v2)).toThrow(/version/);
    expect(() => decodeStoredSession(Uint8Array.of(...good, 0))).toThrow(/trailing/);
    expect(() => decodeStoredSession(good.subarray(0, 28))).toThrow(/ticket/);
  });
});

describe('encodeSession/decodeSession', () => {
  it('a session kept as bytes resumes and is authorized again; from an unverified connection it is not', async () => {
    const { ca, leaf } = createStepwireCredentials(new Date());
    const server = createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, (s) => s.resume());
    const open = async (extra: {
      session?: SessionTicket | Buffer;
      ca?: string;
      rejectUnauthorized?: boolean;
    }) => {
      const [a, b] = duplexPair();
      server.emit('connection', b);
      const c: SecureSocket = connect({
        socket: a,
        servername: 'stepwire.test',
        ca: ca.certificatePem,
        ...extra,
      });
      await once(c, 'secureConnect');
      // As node:tls: the 'session' event and getSession() carry bytes.
      const ticket = c.getSession() ?? ((await once(c, 'session')) as [Buffer])[0];
      c.destroy();
      return { c, ticket };
    };
    const first = await open({});
    const stored = first.ticket;
    expect(Buffer.isBuffer(stored)).toBe(true);
    const resumed = await open({ session: stored });
    expect(resumed.c.isSessionReused()).toBe(true);
    expect(resumed.c.authorized).toBe(true);

    const { ca: stranger } = createStepwireCredentials(new Date());
    const unverified = await open({ ca: stranger.certificatePem, rejectUnauthorized: false });
    expect(unverified.c.authorized).toBe(false);
    const again = await open({ session: encodeSession(decodeSession(unverified.ticket)) });
    expect(again.c.isSessionReused()).toBe(true);
    expect(again.c.authorized).toBe(false);
    expect(again.c.authorizationDetail?.message).toMatch(/did not verify/);
    expect(again.c.authorizationError).toBe('UNABLE_TO_GET_ISSUER_CERT');
  });
});
