import fc from 'fast-check';
import {
  type ChunkExtension,
  type ChunkedBody,
  encodeChunkedBody,
  encodeRequestHead,
  type Field,
  type RequestHead,
  type ResponseHead,
} from './codec.ts';

/**
 * fast-check arbitraries for HTTP/1.1 (from `@stepwire/http/testing`): tokens, field lines,
 * heads, chunked bodies, whole valid messages, and ways to cut bytes into pieces.
 */

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A token (RFC 9110 §5.6.2). */
export const arbitraryToken = (maxLength = 12): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength });

/** Names whose fields change framing or connection handling; random fields avoid them. */
const SPECIAL = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'expect',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
]);

export const arbitraryFieldName: fc.Arbitrary<string> = arbitraryToken(16).filter(
  (n) => !SPECIAL.has(n.toLowerCase()),
);

const valueChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
);

/** A field value as a sender writes it: field-vchar with inner SP/HTAB, obs-text included. */
export const arbitraryFieldValue: fc.Arbitrary<string> = fc
  .array(valueChar, { maxLength: 40 })
  .map((cs) => String.fromCharCode(...cs).replace(/^[ \t]+|[ \t]+$/g, ''));

export const arbitraryField: fc.Arbitrary<Field> = fc.tuple(arbitraryFieldName, arbitraryFieldValue);

export const arbitraryFields = (maxLength = 8): fc.Arbitrary<Field[]> =>
  fc.array(arbitraryField, { maxLength }).map((fs) => fs.map((f) => [f[0], f[1]] as Field));

const pathChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%/?".split(''));

/** An origin-form request-target (RFC 9112 §3.2.1). */
export const arbitraryOriginTarget: fc.Arbitrary<string> = fc
  .array(pathChar, { maxLength: 40 })
  .map((cs) => `/${cs.join('')}`);

export const arbitraryMethod: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  arbitraryToken(10).filter((m) => m !== 'CONNECT' && m !== 'HEAD'),
);

/** A request head with Host and no framing fields (add those to choose the body's framing). */
export const arbitraryRequestHead: fc.Arbitrary<RequestHead> = fc.record({
  method: arbitraryMethod,
  target: arbitraryOriginTarget,
  version: fc.constant({ major: 1, minor: 1 }),
  fields: fc
    .tuple(arbitraryToken(20), arbitraryFields())
    .map(([host, fs]) => [['Host', host] as Field, ...fs]),
});

export const arbitraryReason: fc.Arbitrary<string> = fc
  .array(valueChar, { maxLength: 20 })
  .map((cs) => String.fromCharCode(...cs));

export const arbitraryResponseHead: fc.Arbitrary<ResponseHead> = fc.record({
  version: fc.constantFrom({ major: 1, minor: 1 }, { major: 1, minor: 0 }),
  status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
  reason: arbitraryReason,
  fields: arbitraryFields(),
});

const quoted: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.constantFrom('a', 'b', ' ', '\\"', '\\\\', ';', '='), fc.constant('x')), {
    maxLength: 8,
  })
  .map((p) => `"${p.join('')}"`);

export const arbitraryChunkExtension: fc.Arbitrary<ChunkExtension> = fc.oneof(
  arbitraryToken(8).map((name) => ({ name })),
  fc.record({ name: arbitraryToken(8), value: fc.oneof(arbitraryToken(8), quoted) }),
);

export const arbitraryChunkedBody: fc.Arbitrary<ChunkedBody> = fc.record({
  chunks: fc.array(
    fc.record({
      data: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      extensions: fc.array(arbitraryChunkExtension, { maxLength: 2 }),
    }),
    { maxLength: 5 },
  ),
  lastExtensions: fc.array(arbitraryChunkExtension, { maxLength: 2 }),
  trailers: arbitraryFields(3),
});

/** A whole valid request: its head (framing fields included), its body and its bytes. */
export interface RequestMessage {
  head: RequestHead;
  body: { kind: 'length'; data: Uint8Array } | { kind: 'chunked'; chunked: ChunkedBody };
}

export const arbitraryRequestMessage: fc.Arbitrary<RequestMessage> = fc
  .tuple(
    arbitraryRequestHead,
    fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((data) => ({ kind: 'length' as const, data })),
      arbitraryChunkedBody.map((chunked) => ({ kind: 'chunked' as const, chunked })),
    ),
  )
  .map(([head, body]) => ({
    head: {
      ...head,
      fields: [
        ...head.fields,
        body.kind === 'length'
          ? (['Content-Length', String(body.data.length)] as Field)
          : (['Transfer-Encoding', 'chunked'] as Field),
      ],
    },
    body,
  }));

export function encodeRequestMessage(m: RequestMessage): Uint8Array {
  const head = encodeRequestHead(m.head);
  const body = m.body.kind === 'length' ? m.body.data : encodeChunkedBody(m.body.chunked);
  return Buffer.concat([head, body]);
}

/** The body bytes a receiver should see for a message. */
export function bodyOf(m: RequestMessage): Uint8Array {
  return m.body.kind === 'length' ? m.body.data : Buffer.concat(m.body.chunked.chunks.map((c) => c.data));
}

/** Cut `bytes` at random points: the pieces a socket might deliver. */
export function arbitrarySplit(bytes: Uint8Array, maxCuts = 12): fc.Arbitrary<Uint8Array[]> {
  return fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: maxCuts })
    .map((cuts) => {
      const sorted = cuts.filter((c) => c < bytes.length).sort((a, b) => a - b);
      const out: Uint8Array[] = [];
      let prev = 0;
      for (const c of sorted) {
        out.push(bytes.subarray(prev, c));
        prev = c;
      }
      out.push(bytes.subarray(prev));
      return out;
    });
}

/** Bytes that look like HTTP: fragments of valid messages mixed with hostile ones. */
export const arbitraryHttpishBytes: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'GET / HTTP/1.1\r\n',
        'POST /x HTTP/1.1\r\n',
        'Host: a\r\n',
        'Content-Length: 5\r\n',
        'Content-Length: 99999999999999999\r\n',
        'Transfer-Encoding: chunked\r\n',
        'Transfer-Encoding: gzip\r\n',
        'Connection: close\r\n',
        'Connection: Upgrade\r\nUpgrade: websocket\r\n',
        'Expect: 100-continue\r\n',
        '\r\n',
        '\n',
        '\r',
        ' folded\r\n',
        '5\r\nhello\r\n',
        'ffffffffffffffffff\r\n',
        '0\r\n\r\n',
        'CONNECT a:443 HTTP/1.1\r\n',
        'HTTP/1.1 200 OK\r\n',
        '\x00',
      ),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 20 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));
