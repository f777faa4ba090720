import { fc, test as fcTest } from '@fast-check/vitest';
import { ParseError } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import {
  decodeChunkedBody,
  decodeChunkHeader,
  decodeFieldLine,
  decodeRequestHead,
  decodeRequestHeadStrictly,
  decodeResponseHead,
  decodeTrailerSection,
  encodeChunkedBody,
  encodeChunkHeader,
  encodeRequestHead,
  encodeResponseHead,
  encodeTrailerSection,
  HttpParseError,
  targetForm,
} from '../../src/h1/codec.ts';
import {
  arbitraryChunkExtension,
  arbitraryChunkedBody,
  arbitraryFields,
  arbitraryHttpishBytes,
  arbitraryRequestHead,
  arbitraryResponseHead,
} from '../../src/h1/testing.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof HttpParseError) return e.kind;
    throw e;
  }
  return 'ok';
};

describe('HTTP/1.1 codec: RFC 9112 examples', () => {
  it('decodes the request of RFC 9112 §2.1 (a GET with three fields)', () => {
    // RFC 9112 §2.1, the example request
    const h = decodeRequestHead(
      b(
        'GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n',
      ),
    );
    expect(h).toEqual({
      method: 'GET',
      target: '/hello.txt',
      version: { major: 1, minor: 1 },
      fields: [
        ['User-Agent', 'curl/7.64.1'],
        ['Host', 'www.example.com'],
        ['Accept-Language', 'en, mi'],
      ],
    });
  });

  it('decodes the response of RFC 9112 §2.1', () => {
    const h = decodeResponseHead(
      b(
        'HTTP/1.1 200 OK\r\nDate: Mon, 27 Jul 2009 12:28:53 GMT\r\nServer: Apache\r\nLast-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\nETag: "34aa387-d-1568eb00"\r\nAccept-Ranges: bytes\r\nContent-Length: 51\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n\r\n',
      ),
    );
    expect(h.status).toBe(200);
    expect(h.reason).toBe('OK');
    expect(h.fields).toHaveLength(8);
    expect(h.fields[3]).toEqual(['ETag', '"34aa387-d-1568eb00"']);
  });

  it('knows the four request-target forms (RFC 9112 §3.2)', () => {
    expect(targetForm('/where?q=now')).toBe('origin');
    expect(targetForm('http://www.example.org/pub/WWW/TheProject.html')).toBe('absolute');
    expect(targetForm('www.example.com:80')).toBe('authority');
    expect(targetForm('*')).toBe('asterisk');
    expect(
      decodeRequestHead(b('CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n')).target,
    ).toBe('www.example.com:80');
    expect(decodeRequestHead(b('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n')).target).toBe('*');
    expect(kindOf(() => decodeRequestHead(b('GET * HTTP/1.1\r\nHost: a\r\n\r\n')))).toBe('bad-target');
    expect(kindOf(() => decodeRequestHead(b('CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n')))).toBe('bad-target');
  });

  it('decodes the chunked body with an extension and a trailer', () => {
    // RFC 9112 §7.1 grammar: chunk-size [ chunk-ext ] CRLF chunk-data CRLF ... last-chunk trailer-section CRLF
    const body = decodeChunkedBody(
      b('4;name=value\r\nWiki\r\n5;q="a \\"b\\""\r\npedia\r\n0\r\nExpires: never\r\n\r\n'),
    );
    expect(Buffer.concat(body.chunks.map((c) => c.data)).toString()).toBe('Wikipedia');
    expect(body.chunks[0]?.extensions).toEqual([{ name: 'name', value: 'value' }]);
    expect(body.chunks[1]?.extensions).toEqual([{ name: 'q', value: '"a \\"b\\""' }]);
    expect(body.trailers).toEqual([['Expires', 'never']]);
  });

  it('skips empty lines before a request-line (RFC 9112 §2.2)', () => {
    expect(decodeRequestHead(b('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n')).method).toBe('GET');
  });

  it('accepts a status-line without a reason phrase (RFC 9112 §4)', () => {
    expect(decodeResponseHead(b('HTTP/1.1 204 \r\n\r\n')).reason).toBe('');
    expect(decodeResponseHead(b('HTTP/1.1 204\r\n\r\n')).status).toBe(204);
  });

  it('keeps obs-text bytes in values and trims OWS (RFC 9110 §5.5)', () => {
    expect(decodeFieldLine(b('X-A: \t caf\xe9 \t'))).toEqual(['X-A', 'caf\xe9']);
  });
});

describe('HTTP/1.1 codec: strict grammar', () => {
  const req = (s: string) => kindOf(() => decodeRequestHead(b(s)));
  it('rejects a bare CR', () => expect(req('GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n')).toBe('bare-cr'));
  it('rejects a bare LF', () => expect(req('GET / HTTP/1.1\nHost: a\r\n\r\n')).toBe('bare-lf'));
  it('rejects obs-fold (RFC 9112 §5.2)', () =>
    expect(req('GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n')).toBe('obs-fold'));
  it('rejects whitespace before the colon (RFC 9112 §5.1)', () =>
    expect(req('GET / HTTP/1.1\r\nHost : a\r\n\r\n')).toBe('space-before-colon'));
  it('rejects NUL in a value', () =>
    expect(req('GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n')).toBe('bad-field-value'));
  it('rejects other controls in a value', () =>
    expect(req('GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n')).toBe('bad-field-value'));
  it('rejects a non-token field name', () =>
    expect(req('GET / HTTP/1.1\r\nHo(st: a\r\n\r\n')).toBe('bad-field-name'));
  it('rejects a non-token method', () =>
    expect(req('G(ET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('bad-method'));
  it('rejects double spaces in the request-line', () =>
    expect(req('GET  / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('bad-request-line'));
  it('answers HTTP/2.0 in a request-line with 505', () => {
    expect(req('GET / HTTP/2.0\r\nHost: a\r\n\r\n')).toBe('version-not-supported');
    expect(new HttpParseError('version-not-supported', 'v', 0, '').status).toBe(505);
  });
  it('rejects a lower-case version', () =>
    expect(req('GET / http/1.1\r\nHost: a\r\n\r\n')).toBe('bad-request-line'));
  it('rejects a chunk size overflow', () =>
    expect(kindOf(() => decodeChunkHeader(b('fffffffffffffffff')))).toBe('chunk-size-overflow'));
  it('rejects bad hex in a chunk size', () =>
    expect(kindOf(() => decodeChunkHeader(b('xyz')))).toBe('bad-chunk-size'));
  it('rejects chunk data without its CRLF', () =>
    expect(kindOf(() => decodeChunkedBody(b('3\r\nabcX\r\n0\r\n\r\n')))).toBe('bad-chunk-crlf'));
  it('rejects a malformed chunk extension', () =>
    expect(kindOf(() => decodeChunkHeader(b('3;="x"')))).toBe('bad-chunk-ext'));
  it('errors are ParseErrors naming the byte offset', () => {
    try {
      decodeRequestHead(b('GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ParseError);
      expect((e as ParseError).offset).toBe(28);
    }
  });
});

describe('HTTP/1.1 codec laws', () => {
  fcTest.prop([arbitraryRequestHead])('request head round trip', (h) => {
    expect(decodeRequestHead(encodeRequestHead(h))).toEqual(h);
  });
  const outcome = (fn: () => unknown): unknown => {
    try {
      return { ok: fn() };
    } catch (e) {
      return { err: (e as HttpParseError).kind };
    }
  };
  fcTest.prop([
    fc.oneof(
      arbitraryRequestHead.map((h) => encodeRequestHead(h)),
      arbitraryHttpishBytes.map((b) => Buffer.concat([b, Buffer.from('\r\n\r\n')])),
      arbitraryBytes(120),
    ),
  ])(
    'the fast request-head path accepts exactly what the strict decoder does, with the same result',
    (bytes) => {
      const fast = outcome(() => decodeRequestHead(bytes));
      const strict = outcome(() => decodeRequestHeadStrictly(bytes));
      if ('ok' in (fast as object)) expect(fast).toEqual(strict);
      else expect((strict as { err?: string }).err).toBeDefined();
    },
  );
  fcTest.prop([arbitraryResponseHead])('response head round trip', (h) => {
    expect(decodeResponseHead(encodeResponseHead(h))).toEqual(h);
  });
  fcTest.prop([arbitraryChunkedBody])('chunked body round trip', (body) => {
    const back = decodeChunkedBody(encodeChunkedBody(body));
    expect(back.trailers).toEqual(body.trailers);
    expect(back.lastExtensions).toEqual(body.lastExtensions);
    expect(back.chunks.map((c) => [Buffer.from(c.data).toString('hex'), c.extensions])).toEqual(
      body.chunks.map((c) => [Buffer.from(c.data).toString('hex'), c.extensions]),
    );
  });
  fcTest.prop([
    fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    fc.array(arbitraryChunkExtension, { maxLength: 3 }),
  ])('chunk header round trip', (size, extensions) => {
    const enc = encodeChunkHeader(size, extensions);
    expect(decodeChunkHeader(enc.subarray(0, enc.length - 2))).toEqual({ size, extensions });
  });
  fcTest.prop([arbitraryFields()])('trailer section round trip', (fields) => {
    expect(decodeTrailerSection(encodeTrailerSection(fields))).toEqual(fields);
  });
  for (const [name, decode] of [
    ['request head', decodeRequestHead],
    ['response head', decodeResponseHead],
    ['chunked body', decodeChunkedBody],
    ['chunk header', decodeChunkHeader],
    ['trailer section', decodeTrailerSection],
    ['field line', decodeFieldLine],
  ] as const) {
    fcTest.prop([fc.oneof(arbitraryBytes(200), arbitraryHttpishBytes)])(
      `${name}: arbitrary bytes decode or throw ParseError`,
      (bytes) => {
        expect(decodesOrParseError(decode as (x: Uint8Array) => unknown, bytes)).toBe(true);
      },
    );
  }
});
