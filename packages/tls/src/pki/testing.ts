/**
 * fast-check arbitraries for the certificate layer, for our tests and for anyone who
 * property-tests their own ASN.1 or X.509 handling.
 */
import fc from 'fast-check';
import { type Asn1Node, decodeAsn1, der, encodeAsn1, type StringType, type TagClass } from './der.ts';
import { formatIp } from './ip.ts';
import type { CertificateTemplate } from './issue.ts';
import { ed25519KeyFromSeed, publicKeyOf } from './keys.ts';
import { OID } from './oids.ts';
import { type GeneralName, KEY_USAGE_BITS, KNOWN_EXTENSIONS } from './x509.ts';

/** Dotted OIDs obeying X.660 (first arc 0..2, second < 40 unless the first is 2), with some huge arcs. */
export const arbitraryOid: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 0, max: 2 }),
    fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }),
    fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 200n }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })), {
      maxLength: 8,
    }),
  )
  .map(([a, b, rest]) => [BigInt(a), a < 2 ? b % 40n : b, ...rest].join('.'));

/** Whole-second dates: UTCTime range (1950..2049). */
export const arbitraryUtcDate: fc.Arbitrary<Date> = fc
  .integer({ min: Date.UTC(1950, 0, 1) / 1000, max: Date.UTC(2050, 0, 1) / 1000 - 1 })
  .map((s) => new Date(s * 1000));

/** Whole-second dates: GeneralizedTime range (0000..9999). */
export const arbitraryGeneralizedDate: fc.Arbitrary<Date> = fc
  .integer({ min: -62167219200, max: 253402300799 }) // 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
  .map((s) => new Date(s * 1000));

const printableChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?".split('');

/** A string together with a string type that can carry it. */
export const arbitraryDirectoryString: fc.Arbitrary<{ type: StringType; value: string }> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((value) => ({ type: 'utf8String' as const, value })),
  fc
    .array(fc.constantFrom(...printableChars), { maxLength: 20 })
    .map((cs) => ({ type: 'printableString' as const, value: cs.join('') })),
  fc.string({ unit: 'binary-ascii', maxLength: 20 }).map((value) => ({ type: 'ia5String' as const, value })),
  fc
    .array(
      fc.integer({ min: 0, max: 0xffff }).filter((c) => c < 0xd800 || c > 0xdfff),
      { maxLength: 10 },
    )
    .map((cs) => ({ type: 'bmpString' as const, value: String.fromCharCode(...cs) })),
);

/** A primitive universal element built with the DER writer, so its contents are valid DER. */
const arbitraryUniversalPrimitive: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.boolean().map(der.boolean),
  fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }).map(der.integer),
  fc.integer({ min: -70000, max: 70000 }).map(der.integer),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 0, max: 7 }))
    .map(([b, u]) => der.bitString(b, u)),
  fc.uint8Array({ maxLength: 40 }).map(der.octetString),
  fc.constant(der.null()),
  arbitraryOid.map(der.oid),
  arbitraryDirectoryString.map((s) => der.string(s.type, s.value)),
  arbitraryUtcDate.map(der.utcTime),
  arbitraryGeneralizedDate.map(der.generalizedTime),
);

const arbitraryClass: fc.Arbitrary<Exclude<TagClass, 'universal'>> = fc.constantFrom(
  'application',
  'context',
  'private',
);
const arbitraryTagNumber = fc.oneof(
  fc.integer({ min: 0, max: 30 }),
  fc.integer({ min: 31, max: 0x3fff }),
  fc.integer({ min: 0x4000, max: 0x0fff_ffff }),
);

/**
 * Arbitrary ASN.1 trees: universal primitives with valid DER contents, SEQUENCE/SET of
 * anything, and context/application/private tags (primitive with any contents, or
 * constructed — explicit tagging). Some contents exceed 127 bytes to exercise long lengths.
 */
export const arbitraryAsn1Node: fc.Arbitrary<Asn1Node> = fc.letrec<{ node: Asn1Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    arbitraryUniversalPrimitive.map((b) => decodeAsn1(b)),
    fc
      .tuple(arbitraryClass, arbitraryTagNumber, fc.uint8Array({ maxLength: 300 }))
      .map(([cls, tagNumber, contents]): Asn1Node => ({ cls, constructed: false, tagNumber, contents })),
    fc
      .tuple(fc.constantFrom(16, 17), fc.array(tie('node'), { maxLength: 5 }))
      .map(
        ([tagNumber, children]): Asn1Node => ({ cls: 'universal', constructed: true, tagNumber, children }),
      ),
    fc
      .tuple(arbitraryClass, arbitraryTagNumber, fc.array(tie('node'), { maxLength: 3 }))
      .map(([cls, tagNumber, children]): Asn1Node => ({ cls, constructed: true, tagNumber, children })),
  ),
})).node;

/** Names of subject attributes the arbitrary uses, with the string each may hold. */
const arbitrarySubject: fc.Arbitrary<[string, string][]> = fc.array(
  fc.oneof(
    fc
      .tuple(
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')),
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')),
      )
      .map(([a, b]): [string, string] => ['C', a + b]),
    fc
      .tuple(
        fc.constantFrom('O', 'OU', 'CN', 'L', 'ST'),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }),
      )
      .map(([k, v]): [string, string] => [k, v]),
  ),
  { maxLength: 5 },
);

const arbitraryGeneralName: fc.Arbitrary<GeneralName> = fc.oneof(
  fc.domain().map((value): GeneralName => ({ type: 'dns', value })),
  fc.domain().map((value): GeneralName => ({ type: 'dns', value: `*.${value}` })),
  fc
    .oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }))
    .map((b): GeneralName => ({ type: 'ip', value: formatIp(b) })),
  fc.emailAddress().map((value): GeneralName => ({ type: 'email', value })),
  fc.webUrl().map((value): GeneralName => ({ type: 'uri', value })),
);

/**
 * Certificate templates for `issueCertificate`: any subject, serial, validity (1950..9999),
 * an Ed25519 key, CA or leaf, key usages, purposes, subjectAltNames and unknown extensions
 * (critical or not) whose values are arbitrary DER.
 */
export const arbitraryCertificateTemplate: fc.Arbitrary<CertificateTemplate> = fc
  .record({
    subject: arbitrarySubject,
    serialNumber: fc.bigInt({ min: 1n, max: (1n << 159n) - 1n }),
    dates: fc.tuple(arbitraryGeneralizedDate, arbitraryGeneralizedDate),
    seed: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    isCA: fc.boolean(),
    pathLen: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
    keyUsage: fc.option(fc.subarray([...KEY_USAGE_BITS], { minLength: 1 }), { nil: undefined }),
    extKeyUsage: fc.option(
      fc.uniqueArray(fc.oneof(fc.constantFrom(OID.serverAuth, OID.clientAuth), arbitraryOid), {
        minLength: 1,
        maxLength: 4,
      }),
      {
        nil: undefined,
      },
    ),
    subjectAltNames: fc.option(fc.array(arbitraryGeneralName, { minLength: 1, maxLength: 5 }), {
      nil: undefined,
    }),
    extra: fc.uniqueArray(
      fc.record({
        oid: arbitraryOid.filter((o) => !KNOWN_EXTENSIONS.has(o)),
        critical: fc.boolean(),
        value: arbitraryAsn1Node.map(encodeAsn1),
      }),
      { maxLength: 3, selector: (e) => e.oid },
    ),
  })
  .map((r) => {
    const [a, b] = r.dates;
    const t: CertificateTemplate = {
      subject: r.subject,
      serialNumber: r.serialNumber,
      notBefore: new Date(Math.min(a.getTime(), b.getTime())),
      notAfter: new Date(Math.max(a.getTime(), b.getTime())),
      publicKey: publicKeyOf(ed25519KeyFromSeed(r.seed)),
      isCA: r.isCA,
      extraExtensions: r.extra,
    };
    if (r.isCA && r.pathLen !== undefined) t.pathLenConstraint = r.pathLen;
    if (r.keyUsage) t.keyUsage = r.keyUsage;
    if (r.extKeyUsage) t.extKeyUsage = r.extKeyUsage;
    if (r.subjectAltNames) t.subjectAltNames = r.subjectAltNames;
    return t;
  });
