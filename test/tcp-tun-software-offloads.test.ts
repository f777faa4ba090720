/**
 * Software GSO and GRO in our IP layer (TunSessionOptions.softwareOffloads) on a plain TUN
 * device, with the kernel as the judge: the kernel's TCP takes the packets IP cut from our
 * super-segments (it drops any with a bad checksum, length or sequence number, so the hash
 * would not match), and what our GRO joined from the kernel's packets must reach our
 * server's SHA-256 byte for byte. IPv4 and IPv6, each direction.
 *
 * Root only; fails (never skips) without it. Namespace 'sw-tcptun-soft-<pid>', removed in
 * afterAll; kernel-side programs run with `ip netns exec` and are killed by PID.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Netns } from '@stepwire/link';
import { netnsExists } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpOverTcp, type TcpService } from '../packages/cli/src/services/tcp-services.ts';
import { requireRootAndPrograms } from '../packages/cli/src/tun/kernel.ts';
import { TunSession } from '../packages/cli/src/tun/session.ts';
import { bash, patternSha256, runInfo, seededBytes, sha256 } from './support/tcp-tun.ts';

const NS = `sw-tcptun-soft-${process.pid}`;
const MB20 = 20 * 1024 * 1024;
const dir = mkdtempSync(path.join(tmpdir(), 'sw-tcptun-soft-'));
const FILE = path.join(dir, 'up.bin');
let bodyHash: string;
let s: TunSession;
let ns: Netns;
let web: TcpService;

beforeAll(() => {
  requireRootAndPrograms(['ip', 'curl', 'sha256sum']);
  const body = seededBytes(MB20, 7);
  bodyHash = sha256(body);
  writeFileSync(FILE, body);
  s = TunSession.open({ netns: NS, replace: true, pollTimeoutMs: 50, softwareOffloads: true });
  ns = s.namespace!;
  web = httpOverTcp(s.tcp, 80);
});

afterAll(async () => {
  web?.close();
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
  expect(netnsExists(NS)).toBe(false);
});

const counter = (name: string) => s.host.counters.get(name);

describe.each([
  ['IPv4', '198.18.0.2'],
  ['IPv6', '[fd00:5757::2]'],
])('a plain device with software GSO and GRO, %s', (_family, host) => {
  it('curl GETs 20 MB from us: IP cut our super-segments into packets the kernel took', async () => {
    const before = counter('ip.tx.gso-segments');
    const r = await bash(ns, `curl -sS --max-time 60 'http://${host}/bytes/${MB20}' | sha256sum`, 70_000);
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.split(' ')[0]).toBe(patternSha256(MB20));
    // At least one packet in two of the 20 MB came out of a software cut (TCP's super-segments
    // shrink when its window is small; most are still cut).
    expect(counter('ip.tx.gso-segments') - before).toBeGreaterThan(MB20 / 1448 / 2);
    expect(s.tun.counters.get('drop.mtu')).toBe(0);
  });

  it("curl POSTs 20 MB to our /sha256: GRO joined the kernel's segments and every byte arrived", async () => {
    const before = counter('ip.rx.gro-joined');
    const r = await ns.run(
      'curl',
      [
        '-sS',
        '--max-time',
        '60',
        '-H',
        'content-type: application/octet-stream',
        '--data-binary',
        `@${FILE}`,
        `http://${host}/sha256`,
      ],
      { timeoutMs: 70_000 },
    );
    expect(r.code, runInfo(r)).toBe(0);
    expect(r.stdout.trim()).toBe(bodyHash);
    // How many segments a reader batch holds depends on the machine's load; some are joined.
    expect(counter('ip.rx.gro-joined') - before).toBeGreaterThan(0);
  });
});
