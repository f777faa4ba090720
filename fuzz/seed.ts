/**
 * Writes the committed seed corpus, fuzz/corpus/<target>/: RFC 8448's TLS traces, inputs our
 * encoders make from the packages' own arbitraries (a fixed fast-check seed), keys and
 * certificates from OpenSSL and from our issuer, and for the machines, real exchanges
 * (a TLS client's hello and the server's answering flight; each TCP state's opening).
 * Rerun after a codec changes: `pnpm exec tsx fuzz/seed.ts` (the old seeds are replaced).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { encodeChunkedBody, encodeRequestHead, encodeResponseHead } from '../packages/http/src/h1/codec.ts';
import {
  arbitraryChunkedBody,
  arbitraryRequestHead,
  arbitraryResponseHead,
} from '../packages/http/src/h1/testing.ts';
import { encodeFrame as encodeH2Frame } from '../packages/http/src/h2/frames.ts';
import { arbitraryHttp2Frame } from '../packages/http/src/h2/testing.ts';
import { HpackDecoder, HpackEncoder } from '../packages/http/src/hpack/codec.ts';
import { arbitraryHeaderBlockSequence } from '../packages/http/src/hpack/testing.ts';
import { encodeFrame as encodeWsFrame } from '../packages/http/src/ws/frame.ts';
import { arbitraryWebSocketFrameOf } from '../packages/http/src/ws/testing.ts';
import { fragmentIpv4, fragmentIpv6 } from '../packages/ip/src/fragment.ts';
import { encodeIcmpv4, encodeIcmpv6 } from '../packages/ip/src/icmp.ts';
import { encodeIpv4, type Ipv4Packet } from '../packages/ip/src/ipv4.ts';
import { encodeIpv6, type Ipv6Packet } from '../packages/ip/src/ipv6.ts';
import {
  arbitraryIcmpv4Message,
  arbitraryIcmpv6Message,
  arbitraryIpv4Packet,
  arbitraryIpv6Packet,
} from '../packages/ip/src/testing.ts';
import { encodePcap, PcapWriter } from '../packages/link/src/pcap.ts';
import { encodePcapng, PcapngWriter } from '../packages/link/src/pcapng.ts';
import { arbitraryPcapFile, arbitraryPcapngFile } from '../packages/link/src/testing.ts';
import { encodeFrames as encodeQuicFrames } from '../packages/quic/src/frames/frame.ts';
import {
  encodePlainPacket,
  encodeRetry,
  encodeVersionNegotiation,
} from '../packages/quic/src/packet/header.ts';
import {
  arbitraryPlainPacket,
  arbitraryFrame as arbitraryQuicFrame,
  arbitraryFrameOf as arbitraryQuicFrameOf,
  arbitraryRetryPacket,
  arbitraryTransportParameters,
  arbitraryVersionNegotiationPacket,
} from '../packages/quic/src/testing.ts';
import { encodeTransportParameters } from '../packages/quic/src/transport-parameters.ts';
import { optionsLength, writeOptions } from '../packages/tcp/src/options.ts';
import { encodeSegment } from '../packages/tcp/src/segment.ts';
import { arbitraryTcpOptions, arbitraryTcpSegment } from '../packages/tcp/src/testing.ts';
import { TlsClient } from '../packages/tls/src/client.ts';
import { encodeAlert } from '../packages/tls/src/codec/alert.ts';
import { type ExtensionContext, encodeExtensions } from '../packages/tls/src/codec/extensions.ts';
import { encodeHandshake } from '../packages/tls/src/codec/handshake.ts';
import { encodeTLSCiphertext, encodeTLSPlaintext } from '../packages/tls/src/codec/record.ts';
import { createStepwireCredentials } from '../packages/tls/src/pki/issue.ts';
import { encodePkcs8 } from '../packages/tls/src/pki/keys.ts';
import { TlsServer } from '../packages/tls/src/server.ts';
import { encodeStoredSession } from '../packages/tls/src/session-ticket.ts';
import {
  arbitraryExtensions,
  arbitraryHandshakeMessage,
  arbitraryTLSCiphertext,
  arbitraryTLSPlaintext,
} from '../packages/tls/src/testing.ts';
import * as hrr from '../packages/tls/test/vectors/rfc8448/hrr.ts';
import * as simple from '../packages/tls/test/vectors/rfc8448/simple.ts';
import { encodeUdp } from '../packages/udp/src/datagram.ts';
import { arbitraryUdpDatagramOf } from '../packages/udp/src/testing.ts';
import { ByteWriter } from '../packages/wire/src/bytes.ts';
import { HOST_V4, HOST_V6 } from './targets/ip-host.ts';
import { reach, states } from './targets/tcp-machine.ts';
import { fixedCrypto, NOW, SERVER_NAME, signer, verifier } from './targets/tls-peers.ts';
import { CORPUS_DIR } from './targets.ts';

const SEED = 20261206;
const sample = <T>(arb: fc.Arbitrary<T>, n = 6): T[] => fc.sample(arb, { seed: SEED, numRuns: n });
const V4 = { src: '198.18.0.1', dst: '198.18.0.2' };
const V6 = { src: 'fd00::1', dst: 'fd00::2' };
const u16 = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 0xff);
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** A machine input: each chunk with its 2-byte length (fuzz/targets/expect.ts chunks()). */
const framed = (...parts: Uint8Array[]): Uint8Array => cat(...parts.flatMap((p) => [u16(p.length), p]));

const seeds = new Map<string, Map<string, Uint8Array>>();
function add(target: string, name: string, bytes: Uint8Array): void {
  // Small seeds mutate faster; the arbitraries can make 16 KB records.
  if (name.startsWith('arb-') && bytes.length > 2048) return;
  let m = seeds.get(target);
  if (!m) seeds.set(target, (m = new Map()));
  m.set(name, bytes);
}

// ---- IP, ICMP, UDP, TCP: our encoders over the packages' arbitraries ----
sample(arbitraryIpv4Packet(48)).forEach((p, i) => {
  const b = encodeIpv4(p);
  add('ipv4', `arb-${i}`, b);
  // An ICMP error quotes the header and at least 8 bytes (RFC 792); often the first 28 bytes.
  add('ipv4-quoted', `arb-${i}-quoted`, b.subarray(0, Math.min(b.length, (b[0]! & 0x0f) * 4 + 8)));
});
sample(arbitraryIpv6Packet(48)).forEach((p, i) => {
  const b = encodeIpv6(p);
  add('ipv6', `arb-${i}`, b);
  add('ipv6-quoted', `arb-${i}-quoted`, b.subarray(0, Math.min(b.length, 48)));
});
sample(arbitraryIcmpv4Message, 8).forEach((m, i) => {
  add('icmpv4', `arb-${i}`, encodeIcmpv4(m));
});
sample(arbitraryIcmpv6Message, 8).forEach((m, i) => {
  add('icmpv6', `arb-${i}`, encodeIcmpv6(m, V6.src, V6.dst));
});
sample(arbitraryUdpDatagramOf(32)).forEach((d, i) => {
  add('udp', `arb-${i}`, encodeUdp(d, i % 2 ? V6 : V4));
});
sample(arbitraryTcpSegment(24), 8).forEach((s, i) => {
  add('tcp-segment', `arb-${i}`, encodeSegment(s, V4));
});
sample(arbitraryTcpOptions, 8).forEach((o, i) => {
  const w = new ByteWriter(optionsLength(o));
  writeOptions(w, o);
  add('tcp-options', `arb-${i}`, w.finish());
});

// ---- TCP machine: each state's opening, then a data segment at RCV.NXT, time, a close ----
states.forEach((s, i) => {
  if (reach(i) !== s) throw new Error(`tcp-machine prelude ${i} reaches ${reach(i)}, not ${s}`);
  const segment = Uint8Array.of(0x00, 0x18, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 4, 1, 2, 3, 4, 1, 2, 4, 5, 0xb4);
  add(
    'tcp-machine',
    `${s.toLowerCase()}`,
    cat(Uint8Array.of(i), segment, Uint8Array.of(0x04, 0x03, 0xe8, 0x06)),
  );
});

// ---- TLS codecs: RFC 8448 (simple 1-RTT and HelloRetryRequest traces), then arbitraries ----
const record = (type: number, body: Uint8Array): Uint8Array =>
  cat(Uint8Array.of(type, 3, 3), u16(body.length), body);
add('tls-record', 'rfc8448-client-hello', cat(simple.clientHelloRecordHeader, simple.clientHello));
add('tls-record', 'rfc8448-server-hello', cat(simple.serverHelloRecordHeader, simple.serverHello));
add('tls-record', 'rfc8448-server-handshake-record', simple.serverHandshakeRecord);
add('tls-record', 'alert', record(21, encodeAlert({ level: 2, description: 40 })));
sample(arbitraryTLSPlaintext, 3).forEach((p, i) => {
  add('tls-record', `arb-plain-${i}`, encodeTLSPlaintext(p));
});
sample(arbitraryTLSCiphertext, 2).forEach((c, i) => {
  add('tls-record', `arb-cipher-${i}`, encodeTLSCiphertext(c));
});
for (const [name, msg] of Object.entries({
  'client-hello': simple.clientHello,
  'server-hello': simple.serverHello,
  'encrypted-extensions': simple.encryptedExtensions,
  certificate: simple.certificate,
  'certificate-verify': simple.certificateVerify,
  finished: simple.serverFinished,
  'hrr-encrypted-extensions': hrr.encryptedExtensions,
})) {
  add('tls-handshake', `rfc8448-${name}`, msg);
}
sample(arbitraryHandshakeMessage, 6).forEach((m, i) => {
  add('tls-handshake', `arb-${i}`, encodeHandshake(m));
});
const CONTEXTS: ExtensionContext[] = [
  'client_hello',
  'server_hello',
  'hello_retry_request',
  'encrypted_extensions',
  'certificate_request',
  'certificate',
  'new_session_ticket',
];
CONTEXTS.forEach((ctx, i) => {
  for (const e of sample(arbitraryExtensions(ctx, 4), 1)) {
    add('tls-extensions', `arb-${ctx}`, cat(Uint8Array.of(i), encodeExtensions(e)));
  }
});
// The RFC's ClientHello extensions: after version, random, session id, suites, compression.
{
  const ch = simple.clientHello.subarray(4);
  let at = 2 + 32;
  at += 1 + ch[at]!;
  at += 2 + ((ch[at]! << 8) | ch[at + 1]!);
  at += 1 + ch[at]!;
  add('tls-extensions', 'rfc8448-client-hello', cat(Uint8Array.of(0), ch.subarray(at)));
}
fc.sample(
  fc.record({
    ticket: fc.record({
      ticket: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      psk: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      cipherSuite: fc.constantFrom(0x1301, 0x1302, 0x1303),
      receivedAt: fc.integer({ min: 0, max: 2 ** 42 }),
      lifetimeSeconds: fc.integer({ min: 0, max: 604800 }),
      ageAdd: fc.integer({ min: 0, max: 0xffffffff }),
      maxEarlyDataSize: fc.integer({ min: 0, max: 16384 }),
      serverName: fc.constant('stepwire.test'),
      alpn: fc.constant('h2'),
    }),
    authorized: fc.boolean(),
  }),
  { seed: SEED, numRuns: 3 },
).forEach((s, i) => {
  add('tls-session', `arb-${i}`, encodeStoredSession(s));
});

// ---- PKI: our issuer's certificates and keys, and OpenSSL's (an independent encoder) ----
const ours = createStepwireCredentials(new Date(Date.UTC(2026, 0, 1)), { keyType: 'P-256' });
const oursEd = createStepwireCredentials(new Date(Date.UTC(2026, 0, 1)), { keyType: 'ed25519' });
add('x509', 'ours-p256-ca', ours.ca.certificateDer);
add('x509', 'ours-p256-leaf', ours.leaf.certificateDer);
add('x509', 'ours-ed25519-leaf', oursEd.leaf.certificateDer);
add('der', 'ours-p256-leaf', ours.leaf.certificateDer);
add('pkcs8', 'ours-p256', encodePkcs8(ours.leaf.privateKey));
add('pkcs8', 'ours-ed25519', encodePkcs8(oursEd.leaf.privateKey));
add('pem', 'ours-leaf-and-key', new TextEncoder().encode(ours.leaf.certificatePem + ours.leaf.privateKeyPem));
const dir = mkdtempSync(join(tmpdir(), 'stepwire-seed-'));
try {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', 'rsa.pem');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ec.pem');
  ssl('pkey', '-in', 'rsa.pem', '-outform', 'DER', '-out', 'rsa.p8.der');
  ssl('pkey', '-in', 'ec.pem', '-outform', 'DER', '-out', 'ec.p8.der');
  ssl('rsa', '-in', 'rsa.pem', '-traditional', '-outform', 'DER', '-out', 'rsa.p1.der');
  ssl('ec', '-in', 'ec.pem', '-outform', 'DER', '-out', 'ec.sec1.der');
  ssl(
    'req',
    '-x509',
    '-key',
    'rsa.pem',
    '-subj',
    '/CN=openssl.test',
    '-days',
    '1',
    '-addext',
    'subjectAltName=DNS:openssl.test,IP:198.18.0.1',
    '-outform',
    'DER',
    '-out',
    'rsa.crt.der',
  );
  ssl('req', '-x509', '-key', 'rsa.pem', '-subj', '/CN=openssl.test', '-days', '1', '-out', 'rsa.crt.pem');
  const read = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
  add('pkcs8', 'openssl-rsa1024', read('rsa.p8.der'));
  add('pkcs8', 'openssl-p256', read('ec.p8.der'));
  add('pkcs8', 'openssl-rsa1024-pkcs1', read('rsa.p1.der'));
  add('pkcs8', 'openssl-p256-sec1', read('ec.sec1.der'));
  add('x509', 'openssl-rsa1024', read('rsa.crt.der'));
  add('der', 'openssl-rsa1024-cert', read('rsa.crt.der'));
  add('der', 'openssl-rsa1024-key', read('rsa.p1.der'));
  add('pem', 'openssl-rsa-cert', read('rsa.crt.pem'));
  add('pem', 'openssl-ec-key', read('ec.pem'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// ---- pcap: our writer, and the codec over the arbitrary (both byte orders and precisions) ----
{
  const w = PcapWriter.inMemory();
  for (const b of (seeds.get('ipv4') ?? new Map()).values()) w.write(b, 1000);
  add('pcap', 'writer-ipv4', w.bytes());
  sample(arbitraryPcapFile, 3).forEach((f, i) => {
    add('pcap', `arb-${i}`, encodePcap(f));
  });
  // pcapng: our writer with a TLS secrets block before the packets, and the codec's arbitraries.
  const g = PcapngWriter.inMemory();
  g.keylog('CLIENT_HANDSHAKE_TRAFFIC_SECRET 00 11');
  for (const b of (seeds.get('ipv4') ?? new Map()).values()) g.write(b, 1000);
  add('pcapng', 'writer-ipv4-secrets', g.bytes());
  sample(arbitraryPcapngFile, 3).forEach((f, i) => {
    add('pcapng', `arb-${i}`, encodePcapng(f));
  });
}

// ---- HTTP/1.1, HPACK, HTTP/2, WebSocket, QUIC, QPACK ----
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const ascii = (t: string): Uint8Array => new TextEncoder().encode(t);
add('h1-codec', 'get', ascii('GET /bytes/100 HTTP/1.1\r\nHost: stepwire.test\r\nAccept: */*\r\n\r\n'));
add('h1-codec', 'chunked', ascii('5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n'));
sample(arbitraryRequestHead, 3).forEach((h, i) => {
  add('h1-codec', `arb-request-${i}`, encodeRequestHead(h));
});
sample(arbitraryResponseHead, 2).forEach((h, i) => {
  add('h1-codec', `arb-response-${i}`, encodeResponseHead(h));
});
sample(arbitraryChunkedBody, 2).forEach((b, i) => {
  add('h1-codec', `arb-chunked-${i}`, encodeChunkedBody(b));
});
{
  // RFC 7541 Appendix C.3 (requests without Huffman, one connection) and C.4.1 (with Huffman).
  const c3 = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ].map(hex);
  const d = new HpackDecoder();
  const authority = d.decode(c3[0]!).find((f) => f.name === ':authority')?.value;
  if (authority !== 'www.example.com') throw new Error(`RFC 7541 C.3.1 decodes to ${authority}`);
  add('hpack', 'rfc7541-c3', framed(...c3));
  add('hpack', 'rfc7541-c4.1', framed(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')));
  sample(arbitraryHeaderBlockSequence, 3).forEach((seq, i) => {
    const e = new HpackEncoder();
    add('hpack', `arb-${i}`, framed(...seq.blocks.slice(0, 4).map((b) => e.encode(b))));
  });
}
sample(arbitraryHttp2Frame, 8).forEach((f, i) => {
  add('h2-frames', `arb-${i}`, encodeH2Frame(f));
});
// RFC 6455 §5.7: "Hello" unmasked and masked, a fragmented message, a ping, 256 bytes binary.
add('ws', 'rfc6455-hello', hex('8105 48656c6c6f'));
add('ws', 'rfc6455-hello-masked', hex('8185 37fa213d 7f9f4d5158'));
add('ws', 'rfc6455-fragment', hex('0103 48656c'));
add('ws', 'rfc6455-ping', hex('8905 48656c6c6f'));
add('ws', 'rfc6455-binary-256', cat(hex('827e 0100'), new Uint8Array(256).fill(0x61)));
add(
  'ws',
  'response-head',
  ascii(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
  ),
);
sample(arbitraryWebSocketFrameOf(40), 4).forEach((f, i) => {
  add('ws', `arb-${i}`, encodeWsFrame(f));
});
sample(arbitraryPlainPacket(8), 4).forEach((p, i) => {
  add('quic-packet', `arb-${i}`, cat(Uint8Array.of(8), encodePlainPacket(p)));
});
sample(arbitraryRetryPacket, 1).forEach((p) => {
  add('quic-packet', 'arb-retry', cat(Uint8Array.of(8), encodeRetry(p)));
});
sample(arbitraryVersionNegotiationPacket, 1).forEach((p) => {
  add('quic-packet', 'arb-version-negotiation', cat(Uint8Array.of(8), encodeVersionNegotiation(p)));
});
sample(fc.tuple(fc.array(arbitraryQuicFrameOf(false), { maxLength: 3 }), arbitraryQuicFrame), 5).forEach(
  ([f, last], i) => {
    add('quic-frames', `arb-${i}`, encodeQuicFrames([...f, last]));
  },
);
sample(arbitraryTransportParameters, 3).forEach((t, i) => {
  add('quic-frames', `arb-transport-parameters-${i}`, encodeTransportParameters(t));
});
// RFC 9204 Appendix B.1 (a static reference, stream 0) and B.2 (encoder stream inserts, then a section).
add('qpack', 'rfc9204-b1', framed(new Uint8Array(0), hex('0000 510b 2f69 6e64 6578 2e68 746d 6c')));
add(
  'qpack',
  'rfc9204-b2',
  framed(
    hex('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468'),
    hex('0381 10 11'),
  ),
);

// ---- HTTP/1.1 and HTTP/2 connection cores (servers fed client bytes) ----
add(
  'h1-connection',
  'pipelined',
  framed(
    ascii('GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'),
  ),
);
add(
  'h1-connection',
  'chunked-upload',
  framed(
    ascii('POST /sha256 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ascii('4\r\nwiki\r\n0\r\nX-T: 1\r\n\r\n'),
  ),
);
add(
  'h1-connection',
  'expect-continue',
  framed(
    ascii('PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n'),
    ascii('ok'),
  ),
);
add(
  'h1-connection',
  'upgrade',
  framed(
    ascii(
      'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ),
  ),
);
add('h1-connection', 'http10-close', framed(ascii('GET / HTTP/1.0\r\n\r\n')));
{
  const preface = ascii('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const e = new HpackEncoder();
  const get = e.encode([
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: 'stepwire.test' },
    { name: ':path', value: '/' },
  ]);
  const post = new HpackEncoder().encode([
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: 'stepwire.test' },
    { name: ':path', value: '/echo' },
  ]);
  const settings = encodeH2Frame({ type: 'SETTINGS', ack: false, settings: [[4, 65535]] });
  const ack = encodeH2Frame({ type: 'SETTINGS', ack: true, settings: [] });
  add(
    'h2-connection',
    'get',
    framed(
      preface,
      settings,
      encodeH2Frame({
        type: 'HEADERS',
        streamId: 1,
        endStream: true,
        endHeaders: true,
        headerBlockFragment: get,
      }),
      ack,
    ),
  );
  add(
    'h2-connection',
    'post-with-data-window-ping',
    framed(
      preface,
      settings,
      encodeH2Frame({
        type: 'HEADERS',
        streamId: 3,
        endStream: false,
        endHeaders: false,
        headerBlockFragment: post.subarray(0, 4),
      }),
      encodeH2Frame({
        type: 'CONTINUATION',
        streamId: 3,
        endHeaders: true,
        headerBlockFragment: post.subarray(4),
      }),
      encodeH2Frame({ type: 'DATA', streamId: 3, endStream: true, data: ascii('hello'), padding: 3 }),
      encodeH2Frame({ type: 'WINDOW_UPDATE', streamId: 0, windowSizeIncrement: 1000 }),
      encodeH2Frame({ type: 'PING', ack: false, opaqueData: new Uint8Array(8) }),
      encodeH2Frame({ type: 'RST_STREAM', streamId: 3, errorCode: 8 }),
      encodeH2Frame({ type: 'GOAWAY', lastStreamId: 3, errorCode: 0, debugData: new Uint8Array(0) }),
    ),
  );
}

// ---- IP host: packets addressed to it (fuzz/targets/ip-host.ts), each after its control byte ----
{
  const peer4 = '198.18.0.1';
  const peer6 = 'fd00:5757::1';
  const v4 = (protocol: number, payload: Uint8Array, over: Partial<Ipv4Packet> = {}): Ipv4Packet => ({
    dscp: 0,
    ecn: 0,
    identification: 7,
    reservedFlag: false,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol,
    src: peer4,
    dst: HOST_V4,
    options: [],
    payload,
    ...over,
  });
  const v6p = (nextHeader: number, payload: Uint8Array, over: Partial<Ipv6Packet> = {}): Ipv6Packet => ({
    trafficClass: 0,
    flowLabel: 0,
    hopLimit: 64,
    src: peer6,
    dst: HOST_V6,
    extensionHeaders: [],
    nextHeader,
    payload,
    ...over,
  });
  // Control byte 3 (fix lengths and checksums) for whole packets; 1 for fragments, whose
  // ICMP header (if any) is in the first fragment only.
  const pkt = (b: Uint8Array, control = 3): Uint8Array => cat(Uint8Array.of(control), b);
  const echo4 = encodeIcmpv4({
    kind: 'echo-request',
    code: 0,
    identifier: 1,
    sequence: 1,
    data: new Uint8Array(3000).fill(0x61),
  });
  const echo6 = encodeIcmpv6(
    { kind: 'echo-request', code: 0, identifier: 1, sequence: 1, data: new Uint8Array(3000).fill(0x62) },
    peer6,
    HOST_V6,
  );
  add('ip-host', 'echo-v4', framed(pkt(encodeIpv4(v4(1, echo4.subarray(0, 64))))));
  add(
    'ip-host',
    'fragments-v4',
    framed(...fragmentIpv4(v4(1, echo4), 1500).map((f) => pkt(encodeIpv4(f), 1))),
  );
  add(
    'ip-host',
    'fragments-v6',
    framed(...fragmentIpv6(v6p(58, echo6), 1280, 9).map((f) => pkt(encodeIpv6(f), 1))),
  );
  const udpFromUs = encodeUdp(
    { srcPort: 5000, dstPort: 53, payload: new Uint8Array(8) },
    { src: HOST_V4, dst: peer4 },
  );
  const quoted4 = encodeIpv4(v4(17, udpFromUs, { src: HOST_V4, dst: peer4 }));
  add(
    'ip-host',
    'port-unreachable-v4',
    framed(
      pkt(encodeIpv4(v4(1, encodeIcmpv4({ kind: 'destination-unreachable', code: 3, original: quoted4 })))),
    ),
  );
  add(
    'ip-host',
    'frag-needed-v4',
    framed(
      pkt(
        encodeIpv4(
          v4(
            1,
            encodeIcmpv4({
              kind: 'destination-unreachable',
              code: 4,
              nextHopMtu: 1400,
              original: quoted4.subarray(0, 28),
            }),
          ),
        ),
      ),
    ),
  );
  add(
    'ip-host',
    'udp-and-tcp-v4',
    framed(
      pkt(
        encodeIpv4(
          v4(
            17,
            encodeUdp({ srcPort: 1, dstPort: 9, payload: new Uint8Array(4) }, { src: peer4, dst: HOST_V4 }),
          ),
        ),
      ),
      pkt(encodeIpv4(v4(6, new Uint8Array(20)))),
    ),
  );
  const quoted6 = encodeIpv6(
    v6p(
      17,
      encodeUdp({ srcPort: 5000, dstPort: 53, payload: new Uint8Array(8) }, { src: HOST_V6, dst: peer6 }),
      { src: HOST_V6, dst: peer6 },
    ),
  );
  add(
    'ip-host',
    'packet-too-big-v6',
    framed(
      pkt(
        encodeIpv6(
          v6p(
            58,
            encodeIcmpv6({ kind: 'packet-too-big', code: 0, mtu: 1280, original: quoted6 }, peer6, HOST_V6),
          ),
        ),
      ),
    ),
  );
  add('ip-host', 'echo-v6', framed(pkt(encodeIpv6(v6p(58, echo6.subarray(0, 64))))));
}

// ---- TLS machines: a real exchange with the targets' own deterministic peers ----
{
  const client = new TlsClient({ crypto: fixedCrypto(1), serverName: SERVER_NAME, verifier });
  const hello = Buffer.concat(client.start(NOW).data);
  const server = new TlsServer({ crypto: fixedCrypto(2), signer, ticketKey: new Uint8Array(32).fill(7) });
  const flight = Buffer.concat(server.receive(hello, NOW).data);
  const fin = Buffer.concat(client.receive(flight, NOW).data);
  if (client.state !== 'CONNECTED') throw new Error(`the seed handshake ended in ${client.state}`);
  // The client target's client is a fresh one: the recorded flight must complete its handshake too.
  const again = new TlsClient({ crypto: fixedCrypto(1), serverName: SERVER_NAME, verifier });
  again.start(NOW);
  again.receive(flight, NOW);
  if (again.state !== 'CONNECTED')
    throw new Error(`a fresh client ends the recorded flight in ${again.state}`);
  add('tls-server', 'client-hello', framed(hello));
  add(
    'tls-server',
    'client-hello-split',
    framed(hello.subarray(0, 5), hello.subarray(5, 60), hello.subarray(60)),
  );
  add('tls-server', 'client-hello-and-finished', framed(hello, fin));
  add('tls-server', 'rfc8448-client-hello', framed(cat(simple.clientHelloRecordHeader, simple.clientHello)));
  add('tls-server', 'rfc8448-hrr-client-hello', framed(hrr.clientHello1Record));
  add('tls-record', 'server-flight', flight);
  // tls-client: a server mode byte (plain, HelloRetryRequest, CertificateRequest, ALPN,
  // tickets), then operations on the live flight's records (fuzz/targets/tls-client.ts).
  for (let mode = 0; mode < 5; mode++) {
    add('tls-client', `mode-${mode}`, Uint8Array.of(mode));
    add('tls-client', `mode-${mode}-split-each`, Uint8Array.of(mode, 2, 0, 3, 2, 0, 7, 2, 0, 40, 2, 1, 0));
  }
  add('tls-client', 'inject-alert-first', Uint8Array.of(0, 6, 21, 2, 2, 40));
  add('tls-client', 'inject-ccs-then-handshake', Uint8Array.of(0, 0, 6, 20, 1, 1, 6, 22, 4, 8, 0, 0, 0));
  add('tls-client', 'flip-in-second-record', Uint8Array.of(0, 0, 3, 0, 9, 0x80));
  add('tls-client', 'drop-and-repeat', Uint8Array.of(1, 5, 4, 0, 7));
}

for (const [target, files] of seeds) {
  const d = join(CORPUS_DIR, target);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(d, name), bytes);
  const size = [...files.values()].reduce((n, b) => n + b.length, 0);
  console.log(
    `${target}: ${files.size} seeds, ${size} bytes, ${createHash('sha1')
      .update(Buffer.concat([...files.values()]))
      .digest('hex')
      .slice(0, 8)}`,
  );
}
