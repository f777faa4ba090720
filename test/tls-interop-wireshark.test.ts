/**
 * Wireshark as a third oracle for our TLS 1.3: loopback traffic between our stack and a peer
 * is captured with dumpcap, and tshark, given only our NSS key log, must decrypt every record
 * — the encrypted handshake messages and the HTTP inside — and find nothing malformed. That
 * checks our key schedule and record protection from the outside, and that our key log is
 * what other tools expect.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ourConnect, readUntil, startOurServer } from './support/tls-ours.ts';
import {
  PeerProcess,
  runCurl,
  scratchDir,
  startOpensslServer,
  stopAllPeers,
  tlsFixtures,
} from './support/tls-peers.ts';

afterAll(stopAllPeers);

const fx = tlsFixtures();
const p256 = fx.server['P-256'];

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function requireWireshark(): void {
  for (const tool of ['dumpcap', 'tshark']) {
    if (spawnSync('/bin/sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`'${tool}' is not installed: run 'bash scripts/install-peers.sh' (as root)`);
    }
  }
}

/**
 * dumpcap on loopback for one TCP port. It says "Capturing on" a little before its filter is
 * live, so we send UDP datagrams to a sentinel port on 127.0.0.1 (nobody listens there) until
 * the capture file grows: from then on nothing of the TLS exchange can be missed.
 */
async function capture(port: number): Promise<{ file: string; stop: () => Promise<void> }> {
  requireWireshark();
  const file = join(scratchDir('pcap'), 'tls.pcapng');
  const sentinel = await freeUdpPort();
  const p = new PeerProcess('dumpcap', [
    '-q',
    '-i',
    'lo',
    '-f',
    `tcp port ${port} or udp port ${sentinel}`,
    '-w',
    file,
  ]);
  await p.waitFor(/Capturing on/, { timeoutMs: 10_000 });
  const size = (): number => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  const udp = dgram.createSocket('udp4');
  try {
    const deadline = Date.now() + 10_000;
    while (size() === 0) {
      if (Date.now() > deadline) throw new Error('dumpcap wrote no file within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const header = size();
    while (size() <= header) {
      if (Date.now() > deadline) throw new Error('dumpcap captured nothing within 10 s');
      await new Promise<void>((r) => udp.send('sentinel', sentinel, '127.0.0.1', () => r()));
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    udp.close();
  }
  return {
    file,
    stop: async () => {
      // dumpcap flushes the file when it gets SIGTERM; a moment first for the last segments.
      await new Promise((r) => setTimeout(r, 300));
      await p.stop(3000);
    },
  };
}

interface Frame {
  contentTypes: string;
  handshakeTypes: string;
  uri: string;
  status: string;
}

/**
 * Decrypts the capture with the key log. Checksums are not checked: on loopback the kernel
 * leaves them to an offload that never happens, so tshark would flag every segment.
 */
function decrypt(pcap: string, keylog: string): { frames: Frame[]; problems: string[] } {
  const fields = ['tls.record.content_type', 'tls.handshake.type', 'http.request.uri', 'http.response.code'];
  const out = execFileSync(
    'tshark',
    [
      '-r',
      pcap,
      '-n',
      '-o',
      `tls.keylog_file:${keylog}`,
      '-Y',
      'tls',
      '-T',
      'fields',
      '-E',
      'separator=\t',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=,',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8' },
  );
  const frames = out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [contentTypes = '', handshakeTypes = '', uri = '', status = ''] = l.split('\t');
      return { contentTypes, handshakeTypes, uri, status };
    });
  const problems = execFileSync(
    'tshark',
    [
      '-r',
      pcap,
      '-n',
      '-o',
      `tls.keylog_file:${keylog}`,
      '-Y',
      '_ws.malformed || (tls && _ws.expert.severity >= warning)',
      '-T',
      'fields',
      '-e',
      'frame.number',
      '-e',
      '_ws.expert.message',
    ],
    { encoding: 'utf8' },
  )
    .split('\n')
    .filter((l) => l.length > 0);
  return { frames, problems };
}

/** Handshake message types tshark saw (numbers, RFC 8446 §4). */
function handshakeTypes(frames: Frame[]): Set<number> {
  return new Set(frames.flatMap((f) => f.handshakeTypes.split(',').filter(Boolean).map(Number)));
}

describe('tshark decrypts our TLS 1.3 with our key log', () => {
  it('curl -> our server: every encrypted handshake message and the HTTP exchange', async () => {
    const keylog: string[] = [];
    const srv = await startOurServer({ identity: p256.leaf, mode: 'http', keyLog: (l) => keylog.push(l) });
    const cap = await capture(srv.port);
    const run = await runCurl({ port: srv.port, caFile: p256.ca.certFile, paths: ['/'] });
    expect(run.code, run.stderr).toBe(0);
    await cap.stop();
    await srv.close();
    const keys = join(scratchDir('keys'), 'server.keys');
    writeFileSync(keys, `${keylog.join('\n')}\n`);
    const { frames, problems } = decrypt(cap.file, keys);
    // EncryptedExtensions (8), Certificate (11), CertificateVerify (15), Finished (20) and
    // NewSessionTicket (4) are only visible once decrypted.
    const types = handshakeTypes(frames);
    for (const t of [1, 2, 8, 11, 15, 20, 4]) expect(types, `handshake type ${t}`).toContain(t);
    expect(frames.some((f) => f.uri === '/')).toBe(true);
    expect(frames.some((f) => f.status === '200')).toBe(true);
    expect(problems).toEqual([]);
  });

  it('our client -> s_server -www, resumed: the PSK handshake and the page decrypt too', async () => {
    const keylog: string[] = [];
    const srv = await startOpensslServer({ ...p256.leaf, mode: 'www', msg: false });
    const cap = await capture(srv.port);
    const first = await ourConnect({ port: srv.port, ca: p256.ca, keyLog: (l) => keylog.push(l) });
    first.socket.write('GET / HTTP/1.0\r\n\r\n');
    await readUntil(first.socket);
    first.socket.end();
    const session = await first.ticket();
    const second = await ourConnect({ port: srv.port, ca: p256.ca, session, keyLog: (l) => keylog.push(l) });
    expect(second.handshake.resumed).toBe(true);
    second.socket.write('GET /again HTTP/1.0\r\n\r\n');
    await readUntil(second.socket);
    second.socket.end();
    await cap.stop();
    const keys = join(scratchDir('keys'), 'client.keys');
    writeFileSync(keys, `${keylog.join('\n')}\n`);
    const { frames, problems } = decrypt(cap.file, keys);
    const types = handshakeTypes(frames);
    for (const t of [1, 2, 8, 11, 15, 20, 4]) expect(types, `handshake type ${t}`).toContain(t);
    expect(frames.filter((f) => f.uri !== '').map((f) => f.uri)).toEqual(['/', '/again']);
    expect(problems).toEqual([]);
    await srv.stop();
  });
});
