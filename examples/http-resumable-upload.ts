/**
 * Chunked resumable upload: cut mid-chunk, resumed from the last acknowledged chunk.
 *
 * A 320 KiB image goes up in 64 KiB chunks; the connection is cut
 * in the middle of one, and the client resumes from the last chunk the server acknowledged.
 *
 * The protocol is tus-shaped: `POST /uploads` (with `Upload-Length`) makes an upload and
 * answers its URL; each `PATCH` carries `Upload-Offset` and one chunk, and the server
 * acknowledges the new offset once the whole chunk is stored; `HEAD` tells the offset after
 * a failure. Halfway through the third chunk the client's connection drops; the client asks
 * where it stands, sends that chunk again on a new connection, and finishes. The server's
 * sha256 of the reassembled file matches the client's: at most one chunk went twice.
 *
 *   pnpm example http-resumable-upload
 *   pnpm example http-resumable-upload --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { createHash } from 'node:crypto';
import { fetch } from '@stepwire/http';
import { isMain, stage } from './lib/stage.ts';

export const FILE_BYTES = 320 * 1024;
export const CHUNK = 64 * 1024;

/** The "image": bytes from a seeded xorshift, the same for a seed. */
function image(seed: number): Uint8Array {
  const b = new Uint8Array(FILE_BYTES);
  let x = seed | 1;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function run(o: { seed?: number; print?: boolean; tun?: boolean; cutInChunk?: number } = {}) {
  const file = image(o.seed ?? 1);
  const cutInChunk = o.cutInChunk ?? 2;
  const uploads: { length: number; stored: Buffer[]; offset: number }[] = [];
  let serverReceived = 0;
  let cutPending = true;
  const s = stage(
    (req, res) => {
      const m = /^\/uploads\/(\d+)$/.exec(req.url ?? '');
      const up = m ? uploads[Number(m[1]) - 1] : undefined;
      if (req.method === 'POST' && req.url === '/uploads') {
        const id = uploads.push({ length: Number(req.headers['upload-length']), stored: [], offset: 0 });
        s.log('server', `upload ${id} created`);
        res.writeHead(201, { location: `/uploads/${id}` }).end();
        req.resume();
      } else if (req.method === 'HEAD' && up) {
        res.writeHead(200, { 'upload-offset': String(up.offset), 'upload-length': String(up.length) }).end();
      } else if (req.method === 'PATCH' && up) {
        const offset = Number(req.headers['upload-offset']);
        if (offset !== up.offset) {
          res.writeHead(409, { 'upload-offset': String(up.offset) }).end();
          req.resume();
          return;
        }
        const parts: Buffer[] = [];
        let got = 0;
        let dropped = false;
        req.on('data', (c: Buffer) => {
          parts.push(c);
          got += c.length;
          serverReceived += c.length;
          // The connection drops halfway through one chunk (once).
          if (offset === cutInChunk * CHUNK && got >= CHUNK / 2 && cutPending) {
            s.log('server', `…${got} bytes of the chunk at ${offset} in, the connection drops`);
            dropped = true;
            cutPending = false;
            req.socket.destroy();
          }
        });
        req.on('end', () => {
          if (dropped) return;
          // Store a chunk only whole: the acknowledged offset is always a chunk boundary.
          const chunk = Buffer.concat(parts);
          up.stored.push(chunk);
          up.offset += chunk.length;
          s.log('server', `stored ${chunk.length} bytes → Upload-Offset: ${up.offset}`);
          res.writeHead(204, { 'upload-offset': String(up.offset) }).end();
        });
        req.on('error', () => {});
      } else res.writeHead(404).end();
    },
    { seed: o.seed ?? 1, print: o.print ?? false, tun: o.tun ?? false, link: { rateBps: 8_000_000 } },
  );
  try {
    const client = s.clients[0];
    if (!client) throw new Error('no client');
    const agent = s.agent(client);
    const connections = () => Object.values(agent.stats().origins)[0]?.created ?? 0;

    s.log('client', `→ POST /uploads (${FILE_BYTES} bytes, sha256 ${sha256(file).slice(0, 16)}…)`);
    const created = await s.net.run(
      fetch(s.url('/uploads'), { method: 'POST', headers: { 'upload-length': String(FILE_BYTES) }, agent }),
    );
    const location = created.headers.get('location') ?? '';
    if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}`);
    let offset = 0;
    let sent = 0;
    let failures = 0;
    while (offset < FILE_BYTES) {
      const chunk = file.subarray(offset, offset + CHUNK);
      s.log('client', `→ PATCH ${location} Upload-Offset: ${offset} (${chunk.length} bytes)`);
      sent += chunk.length;
      try {
        const r = await s.net.run(
          fetch(s.url(location), {
            method: 'PATCH',
            headers: { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
            body: chunk,
            agent,
          }),
        );
        if (r.status !== 204) throw new Error(`PATCH answered ${r.status}, not 204: giving up`);
        offset = Number(r.headers.get('upload-offset'));
        s.log('client', `← ${r.status} Upload-Offset: ${offset}`);
      } catch (e) {
        if (!(e instanceof TypeError)) throw e; // fetch failed: the connection is gone
        failures++;
        s.log('client', `✗ ${(e as Error).message}; asking where we stand`);
        const head = await s.net.run(fetch(s.url(location), { method: 'HEAD', agent }));
        offset = Number(head.headers.get('upload-offset'));
        s.log('client', `← HEAD: Upload-Offset: ${offset}, resuming there`);
      }
    }
    const up = uploads[0];
    const serverSha = sha256(Buffer.concat(up?.stored ?? []));
    const result = {
      bytes: FILE_BYTES,
      clientSha: sha256(file),
      serverSha,
      failures,
      /** Bytes the client sent more than once. */
      resent: sent - FILE_BYTES,
      /** Bytes the server read more than once (part of the cut chunk). */
      receivedTwice: serverReceived - FILE_BYTES,
      connections: connections(),
    };
    if (o.print)
      console.log(
        `sha256 client ${result.clientSha.slice(0, 16)}… server ${serverSha.slice(0, 16)}… ${result.clientSha === serverSha ? 'match' : 'DIFFER'}; ${result.resent} bytes sent again (chunk ${CHUNK}), ${result.connections} connections`,
      );
    return { ...result, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
