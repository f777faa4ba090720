import { createHash } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../src/index.ts';
import { once, tcpSim } from './net.ts';

const MB = 1024 * 1024;

function body(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Write `data` in 16 KiB pieces, honouring write()'s backpressure. */
async function writeAll(w: NodeJS.WritableStream, data: Buffer): Promise<number> {
  let stalls = 0;
  for (let off = 0; off < data.length; off += 16 * 1024) {
    if (!w.write(data.subarray(off, off + 16 * 1024))) {
      stalls++;
      await once(w, 'drain');
    }
  }
  return stalls;
}

describe('node:http over stepwire TCP', () => {
  it('node:http Server and client both run on our sockets: 1 MB up, 1 MB down, with backpressure', async () => {
    const { a, b, run, sim } = tcpSim();
    const up = body(MB, 1);
    const down = body(MB, 2);
    let serverStalls = -1;
    const httpServer = http.createServer(async (req, res) => {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of req) {
        h.update(chunk as Buffer);
        n += (chunk as Buffer).length;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(down.length),
        'x-request-sha256': h.digest('hex'),
        'x-request-bytes': String(n),
      });
      serverStalls = await writeAll(res, down);
      res.end();
    });
    let accepted: TcpSocket | undefined;
    const tcpServer = b.createServer((s: TcpSocket) => {
      accepted = s;
      httpServer.emit('connection', s);
    });
    tcpServer.listen(80, sim.b.ipv4);

    const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        const req = http.request(
          {
            method: 'POST',
            host: sim.b.ipv4,
            port: 80,
            path: '/upload',
            headers: { 'content-length': String(up.length) },
            createConnection: () => a.connect({ host: sim.b.ipv4, port: 80 }),
          },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        writeAll(req, up).then((stalls) => {
          expect(stalls).toBeGreaterThan(0);
          req.end();
        }, reject);
      },
    );
    const res = await run(response);
    expect(res.status).toBe(200);
    expect(res.headers['x-request-bytes']).toBe(String(MB));
    expect(res.headers['x-request-sha256']).toBe(sha(up));
    expect(res.body.length).toBe(MB);
    expect(sha(res.body)).toBe(sha(down));
    // The response writer met backpressure too: our socket's write() said stop at least once.
    expect(serverStalls).toBeGreaterThan(0);
    expect(accepted!.bytesRead).toBeGreaterThan(MB);
    expect(accepted!.bytesWritten).toBeGreaterThan(MB);
    httpServer.close();
    tcpServer.close();
  });

  it('keep-alive: two requests on one connection, then the server closes it', async () => {
    const { a, b, run, sim } = tcpSim();
    let connections = 0;
    const httpServer = http.createServer((req, res) => {
      res.setHeader('connection', req.url === '/last' ? 'close' : 'keep-alive');
      res.end(`you asked for ${req.url}`);
    });
    b.createServer((s: TcpSocket) => {
      connections++;
      httpServer.emit('connection', s);
    }).listen(80);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // An Agent calls createConnection for each new socket.
    (agent as unknown as { createConnection: () => TcpSocket }).createConnection = () =>
      a.connect({ host: sim.b.ipv4, port: 80 });
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        http
          .get({ host: sim.b.ipv4, port: 80, path, agent }, (res) => {
            let s = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              s += d;
            });
            res.on('end', () => resolve(s));
          })
          .on('error', reject);
      });
    expect(await run(get('/one'))).toBe('you asked for /one');
    expect(await run(get('/last'))).toBe('you asked for /last');
    expect(connections).toBe(1);
    agent.destroy();
    httpServer.close();
  });
});
