/**
 * Our TLS 1.3 on our TCP on a TUN device, against the Linux kernel's TLS peers:
 *  - our HTTPS service (https.ts: our TLS server, node:http on top) against curl
 *    (--cacert, --tlsv1.3, IPv4 and IPv6, 1 MB hashed) and openssl s_client (chain verified);
 *  - our TLS client (the node:tls-shaped connect) on our TCP against openssl s_server -www;
 *  - the session's pcap decrypted by tshark with the key log our server wrote: tshark must
 *    find the HTTP requests inside, which only works if every secret we logged is right.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tls-tun-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type Netns, netnsExists } from '@stepwire/link';
import { connect, pki, type SecureSocket } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HttpsService,
  httpsOverTcp,
  loadOrCreateServeIdentity,
} from '../packages/cli/src/services/https.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { bash, type KernelProcess, patternSha256, runInfo, track, waitListening } from './support/tcp-tun.ts';
import { tsharkFields } from './support/tshark.ts';

const NS = `sw-tls-tun-${process.pid}`;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tls-tun-'));
const PCAP = path.join(dir, 'session.pcap');
const KEYLOG = path.join(dir, 'keylog.txt');
const keylogLines: string[] = [];
let s: TunSession;
let ns: Netns;
let https: HttpsService;
let caFile: string;
const procs: KernelProcess[] = [];

beforeAll(() => {
  requireRootAndPrograms(['ip', 'ss', 'curl', 'openssl', 'tshark', 'socat']);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50, pcap: PCAP });
  ns = s.namespace!;
  const identity = loadOrCreateServeIdentity(path.join(dir, 'ca'));
  caFile = identity.caPath;
  https = httpsOverTcp(s.tcp, 443, { identity, keylog: (l) => keylogLines.push(l) });
});

afterAll(async () => {
  for (const p of procs) p.kill();
  https?.close();
  await s?.close();
  if (process.env.STEPWIRE_KEEP_PCAP) {
    copyFileSync(PCAP, path.join(process.env.STEPWIRE_KEEP_PCAP, 'tls-tun.pcap'));
    writeFileSync(path.join(process.env.STEPWIRE_KEEP_PCAP, 'tls-tun.keylog'), `${keylogLines.join('\n')}\n`);
  }
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

describe('our TLS server on our TCP on TUN', () => {
  it('curl --cacert --tlsv1.3 verifies our certificate and gets / over IPv4, IPv6 and by name', async () => {
    const curl = `curl -sS --fail --max-time 10 --cacert ${caFile} --tlsv1.3 -w ' %{ssl_verify_result} %{http_version} %{scheme}'`;
    // HTTP/1.1 asked for by ALPN (the key-log test below reads these requests with tshark's
    // HTTP/1.1 dissector), then curl's own choice, which our ALPN answers with h2.
    const r = await bash(
      ns,
      [
        `${curl} --http1.1 https://198.18.0.2/`,
        `${curl} --http1.1 'https://[fd00:5757::2]/'`,
        `${curl} --http1.1 --resolve stepwire.test:443:198.18.0.2 https://stepwire.test/`,
        `${curl} https://198.18.0.2/`,
      ].join("; echo '#'; "),
    );
    expect(r.code, runInfo(r)).toBe(0);
    const bodies = r.stdout.split('#\n');
    expect(bodies).toHaveLength(4);
    // The page, then curl's verify result (0: verified), HTTP version and scheme.
    for (const b of bodies.slice(0, 3)) expect(b).toMatch(/^Hello from stepwire: [^\n]*\n 0 1\.1 HTTPS$/);
    expect(bodies[3]).toMatch(/^Hello from stepwire: [^\n]*\n 0 2 HTTPS$/);
  });

  it('curl: /bytes/1000000 over TLS hashes to the pattern', async () => {
    const r = await bash(
      ns,
      `curl -sS --fail --max-time 20 --http1.1 --cacert ${caFile} --tlsv1.3 https://198.18.0.2/bytes/1000000 | sha256sum`,
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(1_000_000));
  });

  it('curl without our CA refuses the certificate (and the server counts the failed handshake)', async () => {
    const before = https.tlsErrors;
    const r = await bash(ns, 'curl -sS --max-time 10 --tlsv1.3 https://198.18.0.2/', 15_000);
    expect(r.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
    await new Promise((res) => setTimeout(res, 100));
    expect(https.tlsErrors).toBe(before + 1);
  });

  it('plain HTTP sent to 443 gets a fatal TLS alert and a close; the service keeps serving', async () => {
    const before = https.tlsErrors;
    const r = await bash(
      ns,
      "printf 'GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n' | timeout 5 socat -t 3 - TCP:198.18.0.2:443 | od -An -tx1 | tr -d ' \\n'",
    );
    expect(r.code, runInfo(r)).toBe(0);
    // One plaintext alert record (RFC 8446 §5.1, §6): content type 21, level fatal (2), then the description.
    expect(r.stdout).toMatch(/^1503030002 ?02[0-9a-f]{2}$/);
    await new Promise((res) => setTimeout(res, 100));
    expect(https.tlsErrors).toBe(before + 1);
    const again = await bash(ns, `curl -sS --fail --max-time 10 --cacert ${caFile} https://198.18.0.2/`);
    expect(again.stdout).toMatch(/^Hello from stepwire/);
  });

  it('openssl s_client -tls1_3 -CAfile: Verify return code 0', async () => {
    const r = await bash(
      ns,
      `openssl s_client -connect 198.18.0.2:443 -tls1_3 -CAfile ${caFile} -servername stepwire.test -verify_return_error -alpn http/1.1 </dev/null 2>&1`,
    );
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(/New, TLSv1\.3, Cipher is TLS_AES_128_GCM_SHA256/);
    expect(r.stdout).toContain('ALPN protocol: http/1.1');
    expect(r.stdout).toMatch(/subject=CN *= *stepwire\.test/);
  });
});

describe('our TLS client on our TCP on TUN', () => {
  it('against openssl s_server -tls1_3 -www in the namespace: verified handshake and a GET', async () => {
    const now = new Date();
    const ca = pki.createCertificateAuthority({ now, commonName: 'kernel-side CA' });
    const leaf = pki.createLeafCertificate(ca, {
      now,
      dnsNames: ['kernel.stepwire.test'],
      ipAddresses: ['198.18.0.1'],
    });
    writeFileSync(path.join(dir, 'k.pem'), leaf.certificatePem);
    writeFileSync(path.join(dir, 'k.key'), leaf.privateKeyPem, { mode: 0o600 });
    const server = track(
      ns.spawn('openssl', [
        's_server',
        '-accept',
        '4433',
        '-tls1_3',
        '-www',
        '-cert',
        path.join(dir, 'k.pem'),
        '-key',
        path.join(dir, 'k.key'),
      ]),
    );
    procs.push(server);
    await waitListening(ns, 4433);
    for (const [servername, provider] of [
      ['kernel.stepwire.test', 'noble'],
      ['198.18.0.1', 'node'],
    ] as const) {
      const tcp = s.tcp.connect({ host: '198.18.0.1', port: 4433 });
      const tlsSock: SecureSocket = connect({
        socket: tcp,
        servername,
        ca: ca.certificatePem,
        provider,
        keylog: (l) => keylogLines.push(l),
      });
      await new Promise<void>((resolve, reject) => {
        tlsSock.once('secureConnect', resolve);
        tlsSock.once('error', reject);
      });
      expect(tlsSock.authorized).toBe(true);
      expect(tlsSock.getPeerCertificate()?.subject.CN).toBe('kernel.stepwire.test');
      const body = await new Promise<string>((resolve, reject) => {
        let out = '';
        tlsSock.setEncoding('utf8');
        tlsSock.on('data', (d: string) => {
          out += d;
        });
        tlsSock.once('end', () => resolve(out));
        tlsSock.once('error', reject);
        tlsSock.write('GET / HTTP/1.0\r\n\r\n');
      });
      expect(body).toMatch(/^HTTP\/1\.0 200 ok\r\n/);
      // s_server -www describes the session it negotiated with us.
      expect(body).toMatch(/Protocol *: TLSv1\.3/);
      tlsSock.destroy();
    }
  });
});

describe('the key log, checked by tshark on the pcap of this session', () => {
  it('tshark decrypts every HTTPS request with our key log (server and client side)', async () => {
    writeFileSync(KEYLOG, `${keylogLines.join('\n')}\n`);
    // No wait needed: the session's PcapWriter writes each packet synchronously as our link sends
    // or receives it, so every request and response the earlier tests saw complete (our server
    // answered, our client read its answer) is already in the file.
    const rows = tsharkFields(PCAP, ['http.request.method', 'http.request.uri', 'tls.handshake.type'], {
      filter: 'http.request && tcp.port == 443 && tls',
      extra: ['-o', `tls.keylog_file:${KEYLOG}`],
    });
    const uris = rows.map((r) => r['http.request.uri']);
    expect(uris).toContain('/');
    expect(uris).toContain('/bytes/1000000');
    // Without the key log, nothing inside is readable.
    expect(
      tsharkFields(PCAP, ['frame.number'], { filter: 'http.request && tcp.port == 443 && tls' }),
    ).toEqual([]);
    const responses = tsharkFields(PCAP, ['http.response.code'], {
      filter: 'http.response && tcp.port == 443 && tls',
      extra: ['-o', `tls.keylog_file:${KEYLOG}`],
    });
    expect(responses.length).toBeGreaterThanOrEqual(4);
    expect(new Set(responses.map((r) => r['http.response.code']))).toEqual(new Set(['200']));
    // Our client's secrets open its two connections to s_server (port 4433 is not TLS's by default).
    const toKernel = tsharkFields(PCAP, ['http.request.uri'], {
      filter: 'http.request && tcp.port == 4433',
      extra: ['-o', `tls.keylog_file:${KEYLOG}`, '-d', 'tcp.port==4433,tls'],
    });
    expect(toKernel.map((r) => r['http.request.uri'])).toEqual(['/', '/']);
  });
});
