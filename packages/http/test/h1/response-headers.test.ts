import http from 'node:http';
import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { IncomingMessage, type ResponseChannel, ServerResponse } from '../../src/h1/messages.ts';
import { FakeSocket } from './fake-socket.ts';

/**
 * ServerResponse keeps its headers in two arrays scanned case-insensitively (messages.ts);
 * node:http's ServerResponse is the oracle for what setHeader, removeHeader, getHeader,
 * hasHeader, getHeaderNames and getHeaders say after any sequence of them.
 */
const channel: ResponseChannel = {
  sendHead() {},
  sendInformational() {},
  sendData(_c, done) {
    done();
  },
  sendEnd(_t, done) {
    done();
  },
  abort() {},
};

function ours(): ServerResponse {
  const req = new IncomingMessage(new FakeSocket(), {
    method: 'GET',
    url: '/',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    fields: [],
  });
  return new ServerResponse(req, channel);
}

function nodes(): http.ServerResponse {
  return new http.ServerResponse({
    method: 'GET',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    headers: {},
  } as unknown as http.IncomingMessage);
}

// a few names in random case, so the same header is met spelled differently
const NAMES = ['content-type', 'x-a', 'x-b', 'set-cookie', 'date', 'etag'];
const name = fc
  .tuple(fc.constantFrom(...NAMES), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }))
  .map(([n, up]) => [...n].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
const value = fc.oneof(
  fc.stringMatching(/^[a-z0-9=;]{0,8}$/),
  fc.array(fc.stringMatching(/^[a-z0-9]{1,4}$/), { minLength: 1, maxLength: 3 }),
);
const op = fc.oneof(
  fc.record({ op: fc.constant('set' as const), name, value }),
  fc.record({ op: fc.constant('remove' as const), name }),
);

describe('ServerResponse headers', () => {
  fcTest.prop([fc.array(op, { maxLength: 20 }), fc.array(name, { minLength: 1, maxLength: 4 })])(
    'say what node:http says after the same setHeader/removeHeader calls',
    (ops, asked) => {
      const a = ours();
      const b = nodes();
      for (const o of ops) {
        if (o.op === 'set') {
          a.setHeader(o.name, o.value);
          b.setHeader(o.name, o.value);
        } else {
          a.removeHeader(o.name);
          b.removeHeader(o.name);
        }
      }
      expect(a.getHeaderNames()).toEqual(b.getHeaderNames());
      expect({ ...a.getHeaders() }).toEqual({ ...b.getHeaders() });
      for (const n of asked) {
        expect(a.getHeader(n)).toEqual(b.getHeader(n));
        expect(a.hasHeader(n)).toBe(b.hasHeader(n));
      }
    },
  );
});
