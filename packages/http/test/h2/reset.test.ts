import { duplexPair } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/h2/errors.ts';
import { connect, createServer } from '../../src/h2/session.ts';

// RFC 9113 §6.4: the receiver of RST_STREAM learns the error code. The connection used to
// announce the stream closed first, so the session unmapped it and lost the code.
describe('a stream the peer resets', () => {
  it('ends with the peer’s error code on the stream', async () => {
    const server = createServer({}, (stream) => stream.close(ErrorCode.REFUSED_STREAM));
    const [a, b] = duplexPair();
    server.handle(b);
    const session = connect('http://stepwire.test', { createConnection: () => a });
    const stream = session.request({ ':method': 'GET', ':path': '/' });
    const errors: Error[] = [];
    stream.on('error', (e) => errors.push(e));
    stream.resume();
    await new Promise((r) => stream.on('close', r));
    expect(stream.rstCode).toBe(ErrorCode.REFUSED_STREAM);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/REFUSED_STREAM/)]);
    session.destroy();
  });
});
