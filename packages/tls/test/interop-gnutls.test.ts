/**
 * Interop with GnuTLS, an implementation independent of both OpenSSL and ours, over
 * loopback TCP: our client against gnutls-serv (plain and with a HelloRetryRequest),
 * gnutls-cli against our server (data, exporter, resumption). Every process this file
 * starts is killed by PID when its test ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex, utf8 } from '@stepwire/wire';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsClient, type TlsClientOptions } from '../src/client.ts';
import { NamedGroup } from '../src/codec/common.ts';
import type { TlsConnection, TlsEvent, TlsOutput } from '../src/connection.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from '../src/server.ts';
import { makeIdentity, pinnedVerifier, signerFor, type TestIdentity } from './helpers/node-auth.ts';
import { PROVIDERS } from './providers.ts';

const TLS13 = 'NORMAL:-VERS-ALL:+VERS-TLS1.3';
let id: TestIdentity;
let dir: string;
const children: ChildProcess[] = [];
const sockets: net.Socket[] = [];
const servers: net.Server[] = [];
/** Everything the last gnutls-serv printed. */
let servOutput = '';

beforeAll(() => {
  id = makeIdentity('stepwire.test', 'ec');
  dir = mkdtempSync(join(tmpdir(), 'stepwire-gnutls-'));
  writeFileSync(join(dir, 'cert.pem'), id.certPem);
  writeFileSync(join(dir, 'key.pem'), id.keyPem);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function attach(conn: TlsConnection, sock: net.Socket) {
  const events: TlsEvent[] = [];
  const emit = (o: TlsOutput) => {
    for (const d of o.data) sock.write(d);
    events.push(...o.events);
  };
  sock.on('data', (b: Buffer) => emit(conn.receive(new Uint8Array(b), Date.now())));
  sock.on('error', () => {});
  const received = () =>
    Buffer.concat(
      events.filter((e): e is Extract<TlsEvent, { type: 'data' }> => e.type === 'data').map((e) => e.data),
    ).toString();
  return { events, emit, received };
}

/** Start gnutls-serv on a free loopback port (retrying a few ports) and wait until it listens. */
async function gnutlsServ(priority: string, extra: string[] = []): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    // Below Linux's ephemeral range (32768-60999): a port from there may already be the
    // IPv4 listener of another test's listen(0) while gnutls-serv binds only the IPv6 one and
    // still prints "listening"; our client would then handshake with a stranger and hang.
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    const p = spawn(
      'gnutls-serv',
      [
        '--echo',
        '-a',
        '-p',
        String(port),
        '--x509certfile',
        join(dir, 'cert.pem'),
        '--x509keyfile',
        join(dir, 'key.pem'),
        '--priority',
        priority,
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(p);
    let out = '';
    servOutput = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      servOutput += d.toString();
    });
    p.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
      servOutput += d.toString();
    });
    try {
      await until(() => /listening/i.test(out) || p.exitCode !== null, 'gnutls-serv to listen', 10_000);
    } catch {
      p.kill('SIGKILL');
      continue;
    }
    if (p.exitCode === null) return port;
  }
  throw new Error('gnutls-serv did not start');
}

async function ourClientTo(
  port: number,
  crypto: (typeof PROVIDERS)[number],
  groups?: number[],
  more: Partial<TlsClientOptions> = {},
) {
  // gnutls-serv reports "listening" per address family; the IPv4 socket may trail it briefly.
  let sock: net.Socket | undefined;
  for (let attempt = 0; !sock; attempt++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      sock = s;
    } catch (e) {
      if (attempt >= 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const client = new TlsClient({
    crypto,
    serverName: 'stepwire.test',
    verifier: pinnedVerifier([id]),
    groups,
    ...more,
  });
  const io = attach(client, sock);
  io.emit(client.start(Date.now()));
  await until(() => client.state === 'CONNECTED' || client.isClosed, 'the handshake with gnutls-serv');
  return { client, io };
}

/** Our server on a loopback port; every accepted connection gets a fresh TlsServer that echoes. */
async function ourServer(
  crypto: (typeof PROVIDERS)[number],
  ticketKey: Uint8Array,
  more: Partial<TlsServerOptions> = {},
) {
  const conns: TlsServer[] = [];
  const early: string[] = [];
  const done: Extract<TlsEvent, { type: 'handshake-complete' }>[] = [];
  const srv = net.createServer((sock) => {
    const s = new TlsServer({ crypto, signer: signerFor(id), ticketKey, ...more });
    conns.push(s);
    const io = attach(s, sock);
    // Consume events once: collect 0-RTT data, echo each complete line of ordinary data.
    sock.on('data', () => {
      for (const e of io.events.splice(0)) {
        if (e.type === 'early-data') early.push(Buffer.from(e.data).toString());
        if (e.type === 'handshake-complete') done.push(e);
        if (e.type === 'data') {
          const text = Buffer.from(e.data).toString();
          if (s.isConnected) io.emit(s.send(utf8(`echo:${text}`), Date.now()));
        }
      }
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, conns, early, done };
}

/**
 * gnutls-cli --resume reconnects as soon as its first handshake is done; on a loaded machine
 * it can leave before our NewSessionTicket arrives and then has nothing to resume with. Such
 * a run proves nothing either way, so it is tried again (at most three times).
 */
async function resumeWithRetries(run: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3; i++) if (await run()) return;
  throw new Error('gnutls-cli never resumed in three runs');
}

function gnutlsCli(port: number, extra: string[]) {
  const p = spawn(
    'gnutls-cli',
    [
      '-p',
      String(port),
      '--x509cafile',
      join(dir, 'cert.pem'),
      '--verify-hostname',
      'stepwire.test',
      '--sni-hostname',
      'stepwire.test',
      '--priority',
      TLS13,
      ...extra,
      '127.0.0.1',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(p);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  p.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { p, output: () => out };
}

describe.each(PROVIDERS)('interop with GnuTLS ($name)', (crypto) => {
  it('our client talks to gnutls-serv', async () => {
    const port = await gnutlsServ(TLS13);
    const { client, io } = await ourClientTo(port, crypto);
    expect(client.state).toBe('CONNECTED');
    io.emit(client.send(utf8('hello gnutls\n'), Date.now()));
    await until(() => io.received() === 'hello gnutls\n', 'the echo');
    io.emit(client.close(Date.now()));
  });

  it('our client follows a GnuTLS HelloRetryRequest to P-256', async () => {
    const port = await gnutlsServ(`${TLS13}:-GROUP-ALL:+GROUP-SECP256R1`);
    const { client, io } = await ourClientTo(port, crypto, [NamedGroup.x25519, NamedGroup.secp256r1]);
    expect(client.state).toBe('CONNECTED');
    expect(io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({ group: 'secp256r1' });
    io.emit(client.send(utf8('p256\n'), Date.now()));
    await until(() => io.received() === 'p256\n', 'the echo');
  });

  it('gnutls-cli talks to our server and exports the same keying material', async () => {
    const { port, conns } = await ourServer(crypto, crypto.randomBytes(32));
    const cli = gnutlsCli(port, ['--keymatexport', 'EXPERIMENTAL-stepwire', '--keymatexportsize', '24']);
    await until(() => conns[0]?.state === 'CONNECTED', 'our server to connect');
    cli.p.stdin!.write('ping\n');
    await until(() => cli.output().includes('echo:ping'), 'the echo at gnutls-cli');
    const m = /Key material: ([0-9A-Fa-f]+)/.exec(cli.output());
    expect(m).not.toBeNull();
    expect(m![1]!.toLowerCase()).toBe(
      toHex(conns[0]!.exportKeyingMaterial('EXPERIMENTAL-stepwire', new Uint8Array(0), 24)),
    );
    cli.p.stdin!.end();
  });

  it('gnutls-cli sends 0-RTT data that our server accepts', async () => {
    const file = join(dir, 'early.txt');
    writeFileSync(file, 'zero round trip\n');
    await resumeWithRetries(async () => {
      const { port, conns, early, done } = await ourServer(crypto, crypto.randomBytes(32), {
        maxEarlyData: 4096,
        antiReplay: new AntiReplayCache(),
      });
      const cli = gnutlsCli(port, ['--resume', `--earlydata=${file}`]);
      await until(
        () => conns.length >= 2 && conns[1]!.state === 'CONNECTED',
        'the resumed connection',
        15_000,
      );
      if (!done[1]?.resumed) {
        cli.p.kill('SIGKILL');
        return false;
      }
      await until(() => early.join('') === 'zero round trip\n', 'the early data at our server');
      expect(conns[1]!.counters.get('early-data.rejected')).toBe(0);
      return true;
    });
  });

  it('our client sends 0-RTT data that gnutls-serv accepts', async () => {
    const port = await gnutlsServ(TLS13, ['--earlydata', '--maxearlydata=4096']);
    const first = await ourClientTo(port, crypto);
    await until(() => first.io.events.some((e) => e.type === 'session-ticket'), 'a ticket from gnutls-serv');
    const ticket = first.io.events.find(
      (e): e is Extract<TlsEvent, { type: 'session-ticket' }> => e.type === 'session-ticket',
    )!.ticket;
    expect(ticket.maxEarlyDataSize).toBe(4096);
    first.io.emit(first.client.close(Date.now()));
    const second = await ourClientTo(port, crypto, undefined, {
      session: ticket,
      earlyData: utf8('early echo\n'),
    });
    expect(second.io.events.filter((e) => e.type === 'early-data-status')).toEqual([
      { type: 'early-data-status', accepted: true },
    ]);
    expect(second.io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({ resumed: true });
    // GnuTLS took the 0-RTT data (early_data in its EncryptedExtensions) and then verified our
    // Finished over a transcript that includes EndOfEarlyData; its echo server does not echo
    // early data, so ordinary data proves the connection is sound.
    await until(() => /resumed session/.test(servOutput), 'gnutls-serv to report resumption');
    second.io.emit(second.client.send(utf8('after 0-RTT\n'), Date.now()));
    await until(() => second.io.received() === 'after 0-RTT\n', 'gnutls-serv to echo');
  });

  it('external PSK both ways: our client to gnutls-serv, gnutls-cli to our server', async () => {
    const key = crypto.randomBytes(32);
    writeFileSync(join(dir, 'psk.passwd'), `stepwire:${toHex(key)}\n`);
    const port = await gnutlsServ(`${TLS13}:+ECDHE-PSK:+PSK`, ['--pskpasswd', join(dir, 'psk.passwd')]);
    const { client, io } = await ourClientTo(port, crypto, undefined, {
      externalPsk: { identity: utf8('stepwire'), key },
    });
    expect(client.state).toBe('CONNECTED');
    expect(io.events.find((e) => e.type === 'handshake-complete')).toMatchObject({
      psk: 'external',
      peerCertificates: [],
    });
    io.emit(client.send(utf8('psk hello\n'), Date.now()));
    await until(() => io.received() === 'psk hello\n', 'the echo');

    const ours = await ourServer(crypto, crypto.randomBytes(32), {
      externalPsk: (id) => (Buffer.from(id).toString() === 'gnutls' ? { key } : undefined),
    });
    const cli = spawn(
      'gnutls-cli',
      [
        '-p',
        String(ours.port),
        '--priority',
        `${TLS13}:+ECDHE-PSK:+PSK`,
        '--pskusername',
        'gnutls',
        '--pskkey',
        toHex(key),
        '127.0.0.1',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    children.push(cli);
    let out = '';
    cli.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await until(() => ours.conns[0]?.state === 'CONNECTED', 'our server to accept the PSK handshake');
    cli.stdin!.write('psk ping\n');
    await until(() => out.includes('echo:psk ping'), 'the echo at gnutls-cli');
    expect(ours.done[0]).toMatchObject({ psk: 'external', resumed: false });
  });

  it('gnutls-cli resumes with our ticket', async () => {
    await resumeWithRetries(async () => {
      const { port, conns, done } = await ourServer(crypto, crypto.randomBytes(32));
      const cli = gnutlsCli(port, ['--resume']);
      await until(
        () => conns.length >= 2 && conns[1]!.state === 'CONNECTED',
        'the resumed connection',
        15_000,
      );
      if (!done[1]?.resumed) {
        cli.p.kill('SIGKILL');
        return false;
      }
      await until(() => /resumed session/i.test(cli.output()), 'gnutls-cli to report resumption');
      expect(conns.map((c) => c.state)).toEqual(['CONNECTED', 'CONNECTED']);
      return true;
    });
  });
});
