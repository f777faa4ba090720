/**
 * `stepwire fetch --http3 --tun`: our HTTP/3 client on our QUIC, UDP and IP over a TUN device,
 * against ngtcp2's gtlsserver running in the namespace on the kernel's side (198.18.0.1 and
 * fd00:5757::1). The namespace ('sw-quic-fetch-<pid>') is made here with `netns up` and removed in
 * afterAll, also on failure; gtlsserver is killed by its PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsDown } from '@stepwire/link';
import { Prng } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runFetch } from '../packages/cli/src/commands/fetch.ts';
import { runNetns } from '../packages/cli/src/commands/netns.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { selfSignedCertificate } from './support/peer-process.ts';

// The PID in the name: two runs of this file at once (two checkouts, a loop) must not
// remove each other's namespace.
const NS = `sw-quic-fetch-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'sw-quic-fetch-tun-'));
const { key, cert } = selfSignedCertificate(dir);
const htdocs = join(dir, 'htdocs');
mkdirSync(htdocs);
const BODY = new Prng(77).bytes(300_000);
writeFileSync(join(htdocs, 'blob.bin'), BODY);
const servers: ChildProcess[] = [];

beforeAll(async () => {
  requireRootAndPrograms(['ip', 'gtlsserver']);
  netnsDown(NS);
  runNetns('up', { netns: NS }, () => {});
  for (const addr of ['198.18.0.1', 'fd00:5757::1']) {
    const s = spawn(
      'ip',
      ['netns', 'exec', NS, 'gtlsserver', '--quiet', '-d', htdocs, addr, '4433', key, cert],
      {
        stdio: 'ignore',
      },
    );
    servers.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
});

afterAll(() => {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  netnsDown(NS);
  rmSync(dir, { recursive: true, force: true });
});

describe('fetch --http3 --tun against gtlsserver in the namespace', () => {
  for (const addr of ['198.18.0.1', 'fd00:5757::1']) {
    it(`downloads 300 kB from ${addr} over our UDP/IP on TUN, byte for byte`, async () => {
      const out: Buffer[] = [];
      let err = '';
      const file = join(dir, `out-${addr.replace(/:/g, '_')}`);
      const code = await runFetch(
        'https://stepwire.test:4433/blob.bin',
        {
          http3: true,
          tun: true,
          netns: NS,
          cacert: cert,
          resolve: [`stepwire.test:4433:${addr}`],
          output: file,
          verbose: true,
        },
        {
          out: (b) => out.push(Buffer.from(b)),
          err: (t) => {
            err += t;
          },
          errIsTty: false,
          outIsTty: false,
        },
      );
      expect(code, err).toBe(EXIT.ok);
      expect(Buffer.compare(readFileSync(file), Buffer.from(BODY))).toBe(0);
      expect(err).toMatch(/^< server: nghttp3\/ngtcp2 server$/m);
      expect(err).toMatch(
        new RegExp(`Connected to stepwire\\.test \\(${addr.replace(/\./g, '\\.')}\\) port 4433 over QUIC`),
      );
    });
  }
});
