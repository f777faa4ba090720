/**
 * The record layer's fast paths keep the bytes identical: records sealed in place into
 * shared slabs, transport batches joined without copies, records read as views, the running
 * transcript hash, noble's per-key AES-GCM tables, and node's cached X25519 keys.
 */
import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, joinBytes, toHex } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { RecordReader } from '../src/codec/record.ts';
import { type AeadName, nobleCrypto, nodeCrypto } from '../src/crypto/index.ts';
import { cipherSuite, Transcript } from '../src/keyschedule.ts';
import { RecordProtection } from '../src/record.ts';
import { coalesce } from '../src/socket.ts';
import { PROVIDERS } from './providers.ts';

const same = (a: Uint8Array, b: Uint8Array) => toHex(a) === toHex(b);

describe('noble AES-GCM with per-key tables (past 64 KiB a key keeps its GHASH table)', () => {
  it.each([
    ['AES_128_GCM', 16],
    ['AES_256_GCM', 32],
  ] as const)('%s: seals what node seals, opens node’s records, refuses a flipped bit', (alg, keyLength) => {
    const key = nodeCrypto.randomBytes(keyLength);
    const noble = nobleCrypto.aead(alg as AeadName, key);
    const node = nodeCrypto.aead(alg as AeadName, key);
    const sizes = [16385, 0, 1, 15, 16, 17, 100, 16384];
    // 40 records: the first few take noble's one-shot gcm, the rest the per-key tables.
    for (let i = 0; i < 40; i++) {
      const nonce = nodeCrypto.randomBytes(12);
      const aad = nodeCrypto.randomBytes(1 + (i % 6));
      const n = sizes[i % sizes.length] as number;
      // An unaligned view, as a record's content usually is.
      const holder = new Uint8Array(n + 3);
      holder.set(nodeCrypto.randomBytes(n), 3);
      const plaintext = holder.subarray(3);
      const sealed = noble.seal(nonce, aad, plaintext);
      expect(same(sealed, node.seal(nonce, aad, plaintext))).toBe(true);
      const opened = noble.open(nonce, aad, sealed);
      expect(opened && same(opened, plaintext)).toBe(true);
      const tampered = sealed.slice();
      tampered[i % tampered.length] = (tampered[i % tampered.length] as number) ^ 1;
      expect(noble.open(nonce, aad, tampered)).toBeNull();
      expect(node.open(nonce, aad, tampered)).toBeNull();
    }
  });
});

describe.each(PROVIDERS)('record layer fast paths ($name)', (crypto) => {
  const suite = cipherSuite(0x1301);
  const secret = new Uint8Array(32).fill(3);

  it('a large write’s records lie side by side and join into one transport buffer without a copy', () => {
    const sender = new RecordProtection(crypto, suite, secret);
    const receiver = new RecordProtection(crypto, suite, secret);
    const data = nodeCrypto.randomBytes(3 * 16384);
    const records = [0, 1, 2].map((i) => sender.seal(23, data.subarray(i * 16384, (i + 1) * 16384)));
    const batch = coalesce(records);
    expect(batch.length).toBe(1);
    const [one] = batch as [Uint8Array];
    expect(one.buffer).toBe((records[0] as Uint8Array).buffer);
    expect(one.length).toBe(3 * (5 + 16384 + 17));
    // The peer reads the batch back into the same records and the same data.
    const reader = new RecordReader();
    const opened = reader.push(one).map((r) => receiver.open(r).content);
    expect(same(joinBytes(opened), data)).toBe(true);
  });

  it('the slab is let go after the short record that ends a run', () => {
    const p = new RecordProtection(crypto, suite, secret);
    const full = new Uint8Array(16384);
    const a = p.seal(23, full);
    const tail = p.seal(23, full.subarray(0, 100));
    // The tail still joins its run without a copy...
    expect(tail.buffer).toBe(a.buffer);
    expect(coalesce([a, tail]).length).toBe(1);
    // ...and the next write starts a new slab: the rest of the old one is not kept.
    expect(p.seal(23, full).buffer).not.toBe(a.buffer);
  });

  it('small records made one by one are copied into one buffer, in order', () => {
    const p = new RecordProtection(crypto, suite, secret);
    const records = [p.seal(22, fromHex('0102')), p.seal(21, fromHex('0200')), p.seal(23, fromHex('ff'))];
    const batch = coalesce(records);
    expect(batch.length).toBe(1);
    expect(same(batch[0] as Uint8Array, joinBytes(records))).toBe(true);
  });

  it('opens a record whose padding follows the type (RFC 8446 §5.4) and reports the type', () => {
    const p = new RecordProtection(crypto, suite, secret);
    const q = new RecordProtection(crypto, suite, secret);
    const r = q.open(p.seal(22, fromHex('abcdef'), 7));
    expect(r.type).toBe(22);
    expect(toHex(r.content)).toBe('abcdef');
  });
});

fcTest.prop([fc.array(fc.uint8Array({ minLength: 0, maxLength: 20_000 }), { maxLength: 8 })], {
  numRuns: 50,
})('coalesce keeps every byte in order whatever the pieces', (parts) => {
  const out = coalesce(parts);
  expect(toHex(joinBytes(out))).toBe(toHex(joinBytes(parts)));
  expect(out.length).toBeLessThanOrEqual(Math.max(1, parts.length));
});

it('RecordReader keeps only the unfinished tail: the chunk may be reused once push returns', () => {
  const reader = new RecordReader();
  const record = fromHex('1703030003aabbcc');
  const chunk = new Uint8Array(record.length + 3);
  chunk.set(record, 0);
  chunk.set(record.subarray(0, 3), record.length);
  const first = reader.push(chunk);
  expect(first.map(toHex)).toEqual(['1703030003aabbcc']);
  // The caller reuses its buffer; the three buffered bytes must not change with it.
  chunk.fill(0);
  expect(reader.push(record.subarray(3)).map(toHex)).toEqual(['1703030003aabbcc']);
});

describe.each(PROVIDERS)('running transcript hash ($name)', (crypto) => {
  fcTest.prop([fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 })], {
    numRuns: 30,
  })('each Transcript-Hash equals a hash of every message so far (RFC 8446 §4.4.1)', (messages) => {
    const t = new Transcript();
    for (const [i, m] of messages.entries()) {
      t.add(m);
      const alg = i % 2 ? 'sha384' : 'sha256';
      expect(toHex(t.hash(crypto, alg))).toBe(toHex(crypto.hash(alg, joinBytes(messages.slice(0, i + 1)))));
    }
    t.replaceWithMessageHash(crypto, 'sha256');
    const m = t.bytes;
    t.add(fromHex('0200'));
    expect(toHex(t.hash(crypto, 'sha256'))).toBe(
      toHex(crypto.hash('sha256', joinBytes([m, fromHex('0200')]))),
    );
  });
});

describe('node provider', () => {
  it('X25519 with the key pairs it made, and with a raw private key from elsewhere (RFC 7748 §6.1)', () => {
    const alice = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPublic = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5b a4ce2de1 728e3bf4 80350f25 e07e21c9 47d19e33 76f09b3c 1e161742'.replaceAll(
      ' ',
      '',
    );
    expect(toHex(nodeCrypto.sharedSecret('x25519', alice, bobPublic))).toBe(shared);
    expect(toHex(nodeCrypto.generateKeyPair('x25519', alice).publicKey)).toBe(
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
    const a = nodeCrypto.generateKeyPair('x25519');
    const b = nobleCrypto.generateKeyPair('x25519');
    expect(toHex(nodeCrypto.sharedSecret('x25519', a.privateKey, b.publicKey))).toBe(
      toHex(nobleCrypto.sharedSecret('x25519', b.privateKey, a.publicKey)),
    );
    // A copy of the private key (as the hybrid group keeps it) takes the import route.
    expect(toHex(nodeCrypto.sharedSecret('x25519', a.privateKey.slice(), b.publicKey))).toBe(
      toHex(nobleCrypto.sharedSecret('x25519', b.privateKey, a.publicKey)),
    );
  });

  it('small random values from the pool are fresh each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const r = nodeCrypto.randomBytes(32);
      expect(r.length).toBe(32);
      seen.add(toHex(r));
    }
    expect(seen.size).toBe(500);
    expect(nodeCrypto.randomBytes(1000).length).toBe(1000);
  });
});
