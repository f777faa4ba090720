/**
 * X.509 v3 certificates (RFC 5280 §4.1) and the public keys they carry.
 *
 * `decodeCertificate` keeps the exact tbsCertificate bytes (what the issuer signed), the
 * names both parsed and raw, and every extension: the ones path validation needs are
 * decoded into fields, the rest are kept with their critical flag so that validation can
 * refuse a certificate with a critical extension it does not understand (RFC 5280 §4.2).
 */
import { ParseError } from '@stepwire/wire';
import { ASN1_LAYER, bytesToBigInt, DerReader, der, type StringType, type Tlv } from './der.ts';
import { formatIp, parseIp } from './ip.ts';
import { NAME_ATTRIBUTE_OID, NAME_ATTRIBUTES, OID } from './oids.ts';

// ---------- names (RFC 5280 §4.1.2.4) ----------

export interface AttributeTypeAndValue {
  /** Attribute type OID, e.g. '2.5.4.3' for commonName. */
  type: string;
  value: string;
  stringType: StringType;
}
export type RelativeDistinguishedName = AttributeTypeAndValue[];

export interface Name {
  rdns: RelativeDistinguishedName[];
  /** The Name's DER bytes as they appeared, for exact comparison. */
  raw: Uint8Array;
}

function readName(r: DerReader, field: string): Name {
  const { reader, tlv } = r.sequenceTlv(field);
  const rdns: RelativeDistinguishedName[] = [];
  while (!reader.atEnd) {
    const set = reader.set(`${field}.rdn`);
    const rdn: RelativeDistinguishedName = [];
    while (!set.atEnd) {
      const atv = set.sequence(`${field}.rdn.attribute`);
      const type = atv.oid(`${field}.rdn.attribute.type`);
      const { type: stringType, value } = atv.string(`${field}.rdn.attribute.value`);
      atv.end(`${field}.rdn.attribute`);
      rdn.push({ type, value, stringType });
    }
    if (rdn.length === 0) set.fail(`${field}.rdn`, 'empty RelativeDistinguishedName');
    rdns.push(rdn);
  }
  return { rdns, raw: tlv.raw.slice() };
}

/** A one-line form, in the order the RDNs appear: 'C=US, O=Example CA, CN=example.test'. */
export function nameToString(name: Name): string {
  return name.rdns
    .map((rdn) =>
      rdn
        .map((a) => `${NAME_ATTRIBUTES[a.type] ?? a.type}=${a.value.replace(/([,+\\])/g, '\\$1')}`)
        .join(' + '),
    )
    .join(', ');
}

/**
 * The RFC 4514 string form: RDNs in reverse order ('CN=stepwire.test,O=stepwire,C=SE'), with
 * RFC 4514 §2.4 escaping; attribute types without a short name appear as dotted OIDs.
 */
export function nameToRfc4514(name: Name): string {
  const escapeValue = (v: string) =>
    v
      .replace(/[\\"+,;<>]/g, (ch) => `\\${ch}`)
      .replace(/^([ #])/, '\\$1')
      .replace(/ $/, '\\ ')
      .replace(/\0/g, '\\00');
  return [...name.rdns]
    .reverse()
    .map((rdn) => rdn.map((a) => `${NAME_ATTRIBUTES[a.type] ?? a.type}=${escapeValue(a.value)}`).join('+'))
    .join(',');
}

/** The first commonName, if any. */
export function commonNameOf(name: Name): string | undefined {
  for (const rdn of name.rdns) for (const a of rdn) if (a.type === '2.5.4.3') return a.value;
  return undefined;
}

/**
 * Name matching for path building, RFC 5280 §7.1: equal DER, or equal after the
 * comparison rules applied to each attribute (case-insensitive, whitespace collapsed).
 * Comparing string types as equal is the simplification RFC 5280 §7.1 allows.
 */
export function namesEqual(a: Name, b: Name): boolean {
  if (a.raw.length === b.raw.length && a.raw.every((v, i) => v === b.raw[i])) return true;
  if (a.rdns.length !== b.rdns.length) return false;
  const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
  return a.rdns.every((rdn, i) => {
    const other = b.rdns[i]!;
    if (rdn.length !== other.length) return false;
    const key = (x: AttributeTypeAndValue) => `${x.type}=${norm(x.value)}`;
    const left = rdn.map(key).sort();
    const right = other.map(key).sort();
    return left.every((k, j) => k === right[j]);
  });
}

/** Builds a Name from `[label, value]` pairs, e.g. `[['O', 'stepwire'], ['CN', 'stepwire CA']]`. */
export function encodeName(attributes: [string, string][]): Uint8Array {
  return der.sequence(
    ...attributes.map(([label, value]) => {
      const oid = NAME_ATTRIBUTE_OID[label] ?? label;
      // RFC 5280 §4.1.2.4: countryName is PrintableString; otherwise UTF8String.
      const v = oid === '2.5.4.6' ? der.printableString(value) : der.utf8String(value);
      return der.setOf(der.sequence(der.oid(oid), v));
    }),
  );
}

export function decodeName(bytes: Uint8Array): Name {
  const r = new DerReader(bytes);
  const n = readName(r, 'name');
  r.end('name');
  return n;
}

// ---------- algorithms and keys ----------

export interface AlgorithmIdentifier {
  oid: string;
  /** Raw DER of the parameters, if present. */
  parameters?: Uint8Array;
}

function readAlgorithm(r: DerReader, field: string): AlgorithmIdentifier {
  const s = r.sequence(field);
  const oid = s.oid(`${field}.algorithm`);
  const alg: AlgorithmIdentifier = { oid };
  if (!s.atEnd) alg.parameters = s.next(`${field}.parameters`).raw.slice();
  s.end(field);
  return alg;
}

export type PublicKey =
  | { type: 'ed25519'; key: Uint8Array }
  | { type: 'ec'; curve: 'P-256' | 'P-384'; point: Uint8Array }
  | { type: 'rsa'; n: bigint; e: bigint; bits: number }
  | { type: 'unknown'; algorithm: string };

export interface SubjectPublicKeyInfo {
  /** The SPKI's DER bytes, e.g. for KeyObject import or key identifiers. */
  raw: Uint8Array;
  algorithm: AlgorithmIdentifier;
  publicKey: PublicKey;
}

export const bigintToBytes = (v: bigint, length?: number): Uint8Array => {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const raw = Uint8Array.from(Buffer.from(hex, 'hex'));
  if (length === undefined || raw.length === length) return raw;
  if (raw.length > length) throw new RangeError(`integer does not fit ${length} bytes`);
  const out = new Uint8Array(length);
  out.set(raw, length - raw.length);
  return out;
};
export const bitLength = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length);

function readSpki(r: DerReader, field: string): SubjectPublicKeyInfo {
  const { reader: s, tlv } = r.sequenceTlv(field);
  const algorithm = readAlgorithm(s, `${field}.algorithm`);
  const keyAt = s.offset;
  const keyBits = s.bitStringBytes(`${field}.subjectPublicKey`);
  s.end(field);
  return { raw: tlv.raw.slice(), algorithm, publicKey: interpretKey(algorithm, keyBits, field, keyAt) };
}

function interpretKey(alg: AlgorithmIdentifier, key: Uint8Array, field: string, at: number): PublicKey {
  const bad = (reason: string): never => {
    throw new ParseError(ASN1_LAYER, `${field}.subjectPublicKey`, at, reason);
  };
  switch (alg.oid) {
    case OID.idEd25519:
      // RFC 8410 §3: parameters MUST be absent.
      if (alg.parameters) bad('Ed25519 with parameters');
      if (key.length !== 32) bad(`Ed25519 key of ${key.length} bytes`);
      return { type: 'ed25519', key };
    case OID.idEcPublicKey: {
      // RFC 5480 §2.1.1: namedCurve parameters.
      if (!alg.parameters) return bad('EC key without curve parameters');
      const p = new DerReader(alg.parameters, at);
      const curveOid = p.nextIs(6) ? p.oid(`${field}.algorithm.namedCurve`) : '';
      const curve = curveOid === OID.prime256v1 ? 'P-256' : curveOid === OID.secp384r1 ? 'P-384' : undefined;
      if (!curve) return { type: 'unknown', algorithm: `ec:${curveOid || 'explicit'}` };
      const size = curve === 'P-256' ? 32 : 48;
      // RFC 5480 §2.2: uncompressed (0x04) or compressed (0x02/0x03) point.
      const ok =
        (key[0] === 0x04 && key.length === 1 + 2 * size) ||
        ((key[0] === 0x02 || key[0] === 0x03) && key.length === 1 + size);
      if (!ok) bad(`malformed ${curve} point`);
      return { type: 'ec', curve, point: key };
    }
    case OID.rsaEncryption: {
      // RFC 8017 Appendix A.1.1: RSAPublicKey ::= SEQUENCE { modulus, publicExponent }.
      const k = new DerReader(key, at).sequence(`${field}.rsaPublicKey`);
      const n = bytesToBigInt(k.unsignedIntegerBytes(`${field}.rsaPublicKey.modulus`));
      const e = bytesToBigInt(k.unsignedIntegerBytes(`${field}.rsaPublicKey.publicExponent`));
      k.end(`${field}.rsaPublicKey`);
      if (n < 3n || e < 3n || e % 2n === 0n) bad('implausible RSA key');
      return { type: 'rsa', n, e, bits: bitLength(n) };
    }
    default:
      return { type: 'unknown', algorithm: alg.oid };
  }
}

export function decodeSpki(bytes: Uint8Array): SubjectPublicKeyInfo {
  const r = new DerReader(bytes);
  const s = readSpki(r, 'subjectPublicKeyInfo');
  r.end('subjectPublicKeyInfo');
  return s;
}

/** The DER SubjectPublicKeyInfo for a key. */
export function encodeSpki(key: PublicKey): Uint8Array {
  switch (key.type) {
    case 'ed25519':
      return der.sequence(der.sequence(der.oid(OID.idEd25519)), der.bitString(key.key));
    case 'ec':
      return der.sequence(
        der.sequence(
          der.oid(OID.idEcPublicKey),
          der.oid(key.curve === 'P-256' ? OID.prime256v1 : OID.secp384r1),
        ),
        der.bitString(key.point),
      );
    case 'rsa':
      return der.sequence(
        der.sequence(der.oid(OID.rsaEncryption), der.null()),
        der.bitString(
          der.sequence(der.unsignedInteger(bigintToBytes(key.n)), der.unsignedInteger(bigintToBytes(key.e))),
        ),
      );
    case 'unknown':
      throw new RangeError(`cannot encode an unknown key type ${key.algorithm}`);
  }
}

// ---------- extensions (RFC 5280 §4.2) ----------

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING's contents (the DER of the extension's own structure). */
  value: Uint8Array;
}

export interface BasicConstraints {
  cA: boolean;
  pathLenConstraint?: number;
}

/** KeyUsage bits in RFC 5280 §4.2.1.3 order (bit 0 first). */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'contentCommitment',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

export type GeneralName =
  | { type: 'dns'; value: string }
  | { type: 'ip'; value: string }
  | { type: 'email'; value: string }
  | { type: 'uri'; value: string }
  /** Other GeneralName choices (otherName, directoryName, ...), kept as raw DER. */
  | { type: 'other'; tag: number; raw: Uint8Array };

export interface AuthorityKeyIdentifier {
  keyIdentifier?: Uint8Array;
}

/** Extensions this parser understands; anything else critical fails validation. */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

function parseBasicConstraints(r: DerReader): BasicConstraints {
  // RFC 5280 §4.2.1.9: SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
  const s = r.sequence('basicConstraints');
  const bc: BasicConstraints = { cA: false };
  // X.690 §11.5 says a DEFAULT value is never encoded, but certificates with an explicit FALSE
  // exist and OpenSSL and Go accept them; so do we (the meaning is unambiguous).
  if (s.nextIs(1)) bc.cA = s.boolean('basicConstraints.cA');
  if (s.nextIs(2)) bc.pathLenConstraint = s.smallInteger('basicConstraints.pathLenConstraint', 0, 0x7fffffff);
  s.end('basicConstraints');
  return bc;
}

function parseKeyUsage(r: DerReader): KeyUsage[] {
  const bs = r.bitString('keyUsage');
  const out: KeyUsage[] = [];
  KEY_USAGE_BITS.forEach((name, bit) => {
    const byte = bs.bytes[bit >> 3] ?? 0;
    if (byte & (0x80 >> (bit & 7))) out.push(name);
  });
  return out;
}

function parseExtKeyUsage(r: DerReader): string[] {
  const s = r.sequence('extKeyUsage');
  const out: string[] = [];
  while (!s.atEnd) out.push(s.oid('extKeyUsage.keyPurposeId'));
  if (out.length === 0) s.fail('extKeyUsage', 'empty ExtKeyUsageSyntax');
  return out;
}

// RFC 5280 §4.2.1.6
function parseGeneralNames(r: DerReader, field: string): GeneralName[] {
  const s = r.sequence(field);
  const out: GeneralName[] = [];
  while (!s.atEnd) out.push(readGeneralName(s, field));
  if (out.length === 0) s.fail(field, 'empty GeneralNames');
  return out;
}

function ia5(tlv: Tlv, field: string): string {
  let v = '';
  for (let i = 0; i < tlv.contents.length; i++) {
    const b = tlv.contents[i]!;
    if (b > 0x7f) throw new ParseError(ASN1_LAYER, field, tlv.contentsOffset + i, 'non-ASCII in IA5String');
    v += String.fromCharCode(b);
  }
  return v;
}

function readGeneralName(s: DerReader, field: string): GeneralName {
  const tlv = s.next(`${field}.generalName`);
  if (tlv.tag.cls !== 'context')
    s.fail(`${field}.generalName`, 'GeneralName without a context tag', tlv.offset);
  const n = tlv.tag.number;
  const primitive = !tlv.tag.constructed;
  if (n === 1 && primitive) return { type: 'email', value: ia5(tlv, `${field}.rfc822Name`) };
  if (n === 2 && primitive) return { type: 'dns', value: ia5(tlv, `${field}.dNSName`) };
  if (n === 6 && primitive) return { type: 'uri', value: ia5(tlv, `${field}.uniformResourceIdentifier`) };
  if (n === 7 && primitive) {
    // RFC 5280 §4.2.1.6: four octets for IPv4, sixteen for IPv6.
    const c = tlv.contents;
    if (c.length !== 4 && c.length !== 16) {
      s.fail(`${field}.iPAddress`, `iPAddress of ${c.length} octets`, tlv.offset);
    }
    return { type: 'ip', value: formatIp(c) };
  }
  if (n > 8) s.fail(`${field}.generalName`, `no GeneralName choice [${n}]`, tlv.offset);
  return { type: 'other', tag: n, raw: tlv.raw.slice() };
}

function parseAuthorityKeyIdentifier(r: DerReader): AuthorityKeyIdentifier {
  // RFC 5280 §4.2.1.1: SEQUENCE { keyIdentifier [0] OPTIONAL, authorityCertIssuer [1], authorityCertSerialNumber [2] }
  const s = r.sequence('authorityKeyIdentifier');
  const aki: AuthorityKeyIdentifier = {};
  const kid = s.optionalImplicit(0, 'authorityKeyIdentifier.keyIdentifier', false);
  if (kid) aki.keyIdentifier = kid.contents.slice();
  s.optionalImplicit(1, 'authorityKeyIdentifier.authorityCertIssuer', true);
  s.optionalImplicit(2, 'authorityKeyIdentifier.authorityCertSerialNumber', false);
  s.end('authorityKeyIdentifier');
  return aki;
}

// ---------- the certificate ----------

export interface X509Certificate {
  /** The whole certificate's DER. */
  raw: Uint8Array;
  /** The exact tbsCertificate bytes the issuer signed. */
  tbsCertificate: Uint8Array;
  version: 1 | 2 | 3;
  serialNumber: bigint;
  /** tbsCertificate.signature: must equal signatureAlgorithm (RFC 5280 §4.1.2.3). */
  tbsSignature: AlgorithmIdentifier;
  issuer: Name;
  notBefore: Date;
  notAfter: Date;
  subject: Name;
  subjectPublicKeyInfo: SubjectPublicKeyInfo;
  extensions: CertificateExtension[];
  signatureAlgorithm: AlgorithmIdentifier;
  signatureValue: Uint8Array;

  basicConstraints?: BasicConstraints;
  keyUsage?: KeyUsage[];
  /** Key purpose OIDs, e.g. OID.serverAuth. */
  extKeyUsage?: string[];
  subjectAltName?: GeneralName[];
  subjectKeyIdentifier?: Uint8Array;
  authorityKeyIdentifier?: AuthorityKeyIdentifier;
}

/** Parses a DER certificate; throws ParseError (layer 'asn1') on anything malformed. */
export function decodeCertificate(bytes: Uint8Array): X509Certificate {
  const top = new DerReader(bytes);
  const { reader: cert, tlv: certTlv } = top.sequenceTlv('certificate');
  top.end('certificate');
  const { reader: tbs, tlv: tbsTlv } = cert.sequenceTlv('tbsCertificate');
  const signatureAlgorithm = readAlgorithm(cert, 'signatureAlgorithm');
  const signatureValue = cert.bitStringBytes('signatureValue');
  cert.end('certificate');

  // RFC 5280 §4.1.2.1: version [0] EXPLICIT DEFAULT v1.
  let version: 1 | 2 | 3 = 1;
  const v = tbs.optionalExplicit(0, 'tbsCertificate.version');
  if (v) {
    version = (v.smallInteger('tbsCertificate.version', 0, 2) + 1) as 1 | 2 | 3;
    v.end('tbsCertificate.version');
  }
  const serialNumber = tbs.integer('tbsCertificate.serialNumber');
  const tbsSignature = readAlgorithm(tbs, 'tbsCertificate.signature');
  const issuer = readName(tbs, 'tbsCertificate.issuer');
  const validity = tbs.sequence('tbsCertificate.validity');
  const notBefore = validity.time('tbsCertificate.validity.notBefore');
  const notAfter = validity.time('tbsCertificate.validity.notAfter');
  validity.end('tbsCertificate.validity');
  const subject = readName(tbs, 'tbsCertificate.subject');
  const subjectPublicKeyInfo = readSpki(tbs, 'tbsCertificate.subjectPublicKeyInfo');
  // RFC 5280 §4.1.2.8: unique identifiers only in v2/v3.
  const issuerUid = tbs.optionalImplicit(1, 'tbsCertificate.issuerUniqueID', false);
  const subjectUid = tbs.optionalImplicit(2, 'tbsCertificate.subjectUniqueID', false);
  if ((issuerUid || subjectUid) && version === 1)
    tbs.fail('tbsCertificate', 'unique identifier in a v1 certificate');
  const extensions: CertificateExtension[] = [];
  const c: X509Certificate = {
    raw: certTlv.raw.slice(),
    tbsCertificate: tbsTlv.raw.slice(),
    version,
    serialNumber,
    tbsSignature,
    issuer,
    notBefore,
    notAfter,
    subject,
    subjectPublicKeyInfo,
    extensions,
    signatureAlgorithm,
    signatureValue,
  };
  const seen = new Set<string>();
  const exts = tbs.optionalExplicit(3, 'tbsCertificate.extensions');
  if (exts) {
    // RFC 5280 §4.1.2.9: extensions only in v3.
    if (version !== 3) tbs.fail('tbsCertificate.extensions', `extensions in a v${version} certificate`);
    const list = exts.sequence('tbsCertificate.extensions');
    exts.end('tbsCertificate.extensions');
    while (!list.atEnd) {
      const e = list.sequence('extension');
      const oid = e.oid('extension.extnID');
      let critical = false;
      // An explicit FALSE breaks DER's DEFAULT rule but is accepted, as for basicConstraints.cA.
      if (e.nextIs(1)) critical = e.boolean('extension.critical');
      const valueTlv = e.expect('extension.extnValue', 'universal', 4, false);
      const value = valueTlv.contents.slice();
      e.end('extension');
      // RFC 5280 §4.2: at most one instance of a particular extension.
      if (seen.has(oid)) e.fail('extension', `duplicate extension ${oid}`, valueTlv.offset);
      seen.add(oid);
      extensions.push({ oid, critical, value });
      applyExtension(c, oid, new DerReader(value, valueTlv.contentsOffset, e.depth + 1));
    }
  }
  tbs.end('tbsCertificate');
  return c;
}

function applyExtension(c: X509Certificate, oid: string, r: DerReader): void {
  switch (oid) {
    case OID.basicConstraints:
      c.basicConstraints = parseBasicConstraints(r);
      break;
    case OID.keyUsage:
      c.keyUsage = parseKeyUsage(r);
      break;
    case OID.extKeyUsage:
      c.extKeyUsage = parseExtKeyUsage(r);
      break;
    case OID.subjectAltName:
      c.subjectAltName = parseGeneralNames(r, 'subjectAltName');
      break;
    case OID.subjectKeyIdentifier:
      c.subjectKeyIdentifier = r.octetString('subjectKeyIdentifier');
      break;
    case OID.authorityKeyIdentifier:
      c.authorityKeyIdentifier = parseAuthorityKeyIdentifier(r);
      break;
    default:
      return;
  }
  r.end(`extension ${oid}`);
}

/** A one-line description for logs and traces. */
export function certificateSummary(c: X509Certificate): string {
  const key = c.subjectPublicKeyInfo.publicKey;
  const keyText =
    key.type === 'ec'
      ? `EC ${key.curve}`
      : key.type === 'rsa'
        ? `RSA ${key.bits}`
        : key.type === 'ed25519'
          ? 'Ed25519'
          : key.algorithm;
  const san = (c.subjectAltName ?? [])
    .map((g) => (g.type === 'other' ? `[${g.tag}]` : `${g.type.toUpperCase()}:${g.value}`))
    .join(' ');
  return (
    `subject "${nameToString(c.subject)}" issuer "${nameToString(c.issuer)}" ${keyText}` +
    ` ${c.notBefore.toISOString()}..${c.notAfter.toISOString()}` +
    `${c.basicConstraints?.cA ? ' CA' : ''}${san ? ` SAN ${san}` : ''}`
  );
}

/** The subjectAltName entries of a type, e.g. `altNames(cert, 'dns')`. */
export function altNames(c: X509Certificate, type: 'dns' | 'ip' | 'email' | 'uri'): string[] {
  return (c.subjectAltName ?? []).flatMap((g) => (g.type === type ? [g.value] : []));
}

/** The DER GeneralNames for a subjectAltName extension. */
export function encodeGeneralNames(names: GeneralName[]): Uint8Array {
  return der.sequence(...names.map(encodeGeneralName));
}

// RFC 5280 §4.2.1.6: the choices are IMPLICIT tags over IA5String or OCTET STRING contents.
function encodeGeneralName(g: GeneralName): Uint8Array {
  const ia5 = (v: string): Uint8Array => {
    // IDNs must already be A-labels (RFC 5280 §7.2); IA5String is ASCII.
    if (!/^[\x00-\x7f]*$/.test(v)) throw new RangeError(`${JSON.stringify(v)} is not ASCII (IA5String)`);
    return new TextEncoder().encode(v);
  };
  switch (g.type) {
    case 'email':
      return der.implicit(1, ia5(g.value));
    case 'dns':
      return der.implicit(2, ia5(g.value));
    case 'uri':
      return der.implicit(6, ia5(g.value));
    case 'ip':
      return der.implicit(7, parseIp(g.value));
    case 'other':
      return g.raw;
  }
}

// ---------- PEM (RFC 7468) ----------

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** Every PEM block in a text, in order. Text outside blocks is ignored (RFC 7468 §2). */
export function decodePem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [, label, body, endLabel] = m as unknown as [string, string, string, string];
    if (label !== endLabel)
      throw new ParseError('pem', 'END', m.index, `BEGIN ${label} ended by END ${endLabel}`);
    const b64 = body.replace(/\s+/g, '');
    // RFC 7468 §3: strict base64; headers (RFC 1421 "Proc-Type:") mean encryption we do not do.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new ParseError('pem', label, m.index, 'not base64 (an encrypted key?)');
    }
    out.push({ label, der: new Uint8Array(Buffer.from(b64, 'base64')) });
  }
  return out;
}

export function encodePem(label: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${label}-----\n`;
}

/** All CERTIFICATE blocks of a PEM text, parsed. */
export function decodeCertificatesPem(text: string): X509Certificate[] {
  return decodePem(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => decodeCertificate(b.der));
}

export function encodeCertificatePem(c: X509Certificate | Uint8Array): string {
  return encodePem('CERTIFICATE', c instanceof Uint8Array ? c : c.raw);
}
