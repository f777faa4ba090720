import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateError,
  type CertificateErrorCode,
  createCertificateAuthority,
  createLeafCertificate,
  decodeCertificate,
  decodeCertificatesPem,
  generateKey,
  issueCertificate,
  matchesHostname,
  nodeSignatures,
  OID,
  publicKeyOf,
  pureSignatures,
  type VerifyOptions,
  verifyCertificateChain,
  type X509Certificate,
} from '../src/pki/index.ts';
import { OpensslDir } from './pki-openssl.ts';

const ssl = new OpensslDir();
let serial = 1;

type KeyKind = 'ec' | 'rsa' | 'ed25519' | 'p384';
/** Makes name.key and name.crt with openssl: self-signed when `issuer` is undefined. */
function mk(
  name: string,
  key: KeyKind,
  subj: string,
  ext: string[],
  issuer?: string,
  days = 30,
): X509Certificate {
  const gen: Record<KeyKind, string[]> = {
    ec: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
    ed25519: ['-algorithm', 'ED25519'],
  };
  ssl.run('genpkey', ...gen[key], '-out', `${name}.key`);
  ssl.run('req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`);
  ssl.write(`${name}.ext`, `[v3]\n${ext.join('\n')}\n`);
  const signer = issuer ? ['-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`] : ['-signkey', `${name}.key`];
  ssl.run(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-set_serial',
    String(serial++),
    '-days',
    String(days),
    '-extfile',
    `${name}.ext`,
    '-extensions',
    'v3',
    '-out',
    `${name}.crt`,
  );
  return decodeCertificatesPem(ssl.readText(`${name}.crt`))[0]!;
}

const CA_EXT = [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
];
const INTER_EXT = [...CA_EXT, 'authorityKeyIdentifier=keyid'];
const LEAF_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:stepwire.test,DNS:*.wild.test,IP:198.18.0.2,IP:fd00:5757::2',
  'authorityKeyIdentifier=keyid',
];

const certs: Record<string, X509Certificate> = {};

beforeAll(() => {
  // A mixed-algorithm chain: RSA root, P-256 intermediate, Ed25519 leaf; and an all-ECDSA one.
  certs.root = mk('root', 'rsa', '/O=stepwire tests/CN=Root CA', CA_EXT);
  certs.inter = mk('inter', 'ec', '/O=stepwire tests/CN=Intermediate CA', INTER_EXT, 'root');
  certs.leaf = mk('leaf', 'ed25519', '/CN=stepwire.test', LEAF_EXT, 'inter');
  certs.root2 = mk('root2', 'p384', '/CN=Root 2', CA_EXT);
  certs.inter2 = mk('inter2', 'ec', '/CN=Inter 2', INTER_EXT, 'root2');
  certs.leaf2 = mk('leaf2', 'ec', '/CN=leaf2', LEAF_EXT, 'inter2');
  // Negative material.
  certs.other = mk('other', 'ec', '/O=stepwire tests/CN=Root CA', CA_EXT); // same name, other key
  certs.notCa = mk(
    'notca',
    'ec',
    '/CN=Not a CA',
    ['basicConstraints=critical,CA:FALSE', 'authorityKeyIdentifier=keyid'],
    'root',
  );
  certs.leafOfNotCa = mk('leaf-notca', 'ec', '/CN=stepwire.test', LEAF_EXT, 'notca');
  certs.critical = mk(
    'critical',
    'ec',
    '/CN=stepwire.test',
    [...LEAF_EXT, '1.2.3.4.5=critical,ASN1:NULL'],
    'inter',
  );
  certs.rootPath0 = mk('root-p0', 'ec', '/CN=Root pathlen 0', [
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    'keyUsage=critical,keyCertSign',
  ]);
  certs.interUnderP0 = mk('inter-p0', 'ec', '/CN=Inter under pathlen 0', INTER_EXT, 'root-p0');
  certs.leafUnderP0 = mk('leaf-p0', 'ec', '/CN=stepwire.test', LEAF_EXT, 'inter-p0');
  certs.interNoSign = mk(
    'inter-nosign',
    'ec',
    '/CN=Inter without keyCertSign',
    [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,digitalSignature',
      'authorityKeyIdentifier=keyid',
    ],
    'root',
  );
  certs.leafUnderNoSign = mk('leaf-nosign', 'ec', '/CN=stepwire.test', LEAF_EXT, 'inter-nosign');
  certs.clientOnly = mk(
    'client-only',
    'ec',
    '/CN=stepwire.test',
    LEAF_EXT.map((l) => (l.startsWith('extendedKeyUsage') ? 'extendedKeyUsage=clientAuth' : l)),
    'inter',
  );
  certs.selfSigned = mk('self', 'ec', '/CN=stepwire.test', LEAF_EXT.slice(0, -1));
  certs.noSan = mk('nosan', 'ec', '/CN=stepwire.test', ['basicConstraints=critical,CA:FALSE'], 'inter');
});
afterAll(() => ssl.remove());

const now = () => new Date();

function codeOf(f: () => unknown): CertificateErrorCode {
  try {
    f();
  } catch (e) {
    if (e instanceof CertificateError) return e.code;
    throw e;
  }
  throw new Error('expected a CertificateError');
}

/** Runs openssl verify on `leaf`.crt against `root`.crt, at an optional time and for an optional host. */
function opensslVerify(
  leaf: string,
  root: string,
  untrusted: string[],
  extra: string[],
): { code: number; out: string } {
  const args = ['verify', '-CAfile', `${root}.crt`];
  if (untrusted.length) {
    ssl.write('untrusted.pem', untrusted.map((u) => ssl.readText(`${u}.crt`)).join(''));
    args.push('-untrusted', 'untrusted.pem');
  }
  return ssl.status(...args, ...extra, `${leaf}.crt`);
}

/** openssl verify's verdict: true when it accepts the chain. */
function opensslVerdict(leaf: string, root: string, untrusted: string[], extra: string[] = []): boolean {
  return opensslVerify(leaf, root, untrusted, extra).code === 0;
}

/**
 * openssl verify's refusal: it must fail, and its output (`error N at D depth lookup: reason`)
 * is returned so a test matches the reason; a refusal for any other reason must not pass.
 */
function opensslRefusal(leaf: string, root: string, untrusted: string[], extra: string[] = []): string {
  const r = opensslVerify(leaf, root, untrusted, extra);
  expect(r.code, r.out).not.toBe(0);
  return r.out;
}

describe('chains openssl built', () => {
  for (const provider of [nodeSignatures, pureSignatures]) {
    it(`RSA root -> P-256 intermediate -> Ed25519 leaf verifies (${provider.name})`, () => {
      const opts: VerifyOptions = {
        trustAnchors: [certs.root!],
        now: now(),
        hostname: 'stepwire.test',
        provider,
      };
      const path = verifyCertificateChain(certs.leaf!.raw, [certs.inter!.raw], opts);
      expect(path.chain.map((c) => c.subject.rdns.at(-1)![0]!.value)).toEqual([
        'stepwire.test',
        'Intermediate CA',
        'Root CA',
      ]);
      expect(opensslVerdict('leaf', 'root', ['inter'])).toBe(true);
    });
  }

  it('P-384 root -> P-256 intermediate (SHA-256 digest with a P-384 key) -> P-256 leaf', () => {
    const path = verifyCertificateChain(certs.leaf2!, [certs.inter2!], {
      trustAnchors: [certs.root2!],
      now: now(),
      hostname: '198.18.0.2',
    });
    expect(path.chain.length).toBe(3);
    expect(path.chain[1]!.signatureAlgorithm.oid).toBe(OID.ecdsaWithSHA256);
    expect(path.chain[2]!.subjectPublicKeyInfo.publicKey).toMatchObject({ type: 'ec', curve: 'P-384' });
  });

  it('extra and out-of-order certificates in the Certificate message do no harm', () => {
    const path = verifyCertificateChain(
      certs.leaf!,
      [certs.inter2!, certs.other!, certs.root!, certs.inter!],
      {
        trustAnchors: [certs.root2!, certs.other!, certs.root!],
        now: now(),
      },
    );
    expect(path.anchor.raw).toEqual(certs.root!.raw);
  });

  it('a trust anchor that is the leaf itself (pinned self-signed certificate)', () => {
    const self = certs.selfSigned!;
    const path = verifyCertificateChain(self, [], {
      trustAnchors: [self],
      now: now(),
      hostname: 'stepwire.test',
    });
    expect(path.chain.length).toBe(1);
    // A CA certificate cannot be a TLS leaf: its keyUsage lacks digitalSignature.
    expect(
      codeOf(() => verifyCertificateChain(certs.root!, [], { trustAnchors: [certs.root!], now: now() })),
    ).toBe('leaf_key_usage');
  });

  it('expired and not yet valid: our verdict and openssl -attime agree', () => {
    const { leaf } = certs;
    const after = new Date(leaf!.notAfter.getTime() + 86_400_000);
    const before = new Date(leaf!.notBefore.getTime() - 86_400_000);
    const opts = (t: Date) => ({ trustAnchors: [certs.root!], now: t });
    expect(codeOf(() => verifyCertificateChain(leaf!, [certs.inter!], opts(after)))).toBe('expired');
    expect(codeOf(() => verifyCertificateChain(leaf!, [certs.inter!], opts(before)))).toBe('not_yet_valid');
    const e = (() => {
      try {
        verifyCertificateChain(leaf!, [certs.inter!], opts(after));
      } catch (err) {
        return err as CertificateError;
      }
    })()!;
    expect(e.alert).toBe('certificate_expired');
    // Root, intermediate and leaf share their validity here; RFC 5280 §6.1 meets the root first.
    expect(e.depth).toBe(2);
    const secs = (d: Date) => String(Math.floor(d.getTime() / 1000));
    expect(opensslRefusal('leaf', 'root', ['inter'], ['-attime', secs(after)])).toMatch(
      /error 10 at 2 depth lookup: certificate has expired/,
    );
    expect(opensslRefusal('leaf', 'root', ['inter'], ['-attime', secs(before)])).toMatch(
      /error 9 at 2 depth lookup: certificate is not yet valid/,
    );
    expect(
      opensslVerdict(
        'leaf',
        'root',
        ['inter'],
        ['-attime', secs(new Date(leaf!.notBefore.getTime() + 1000))],
      ),
    ).toBe(true);
  });

  it('wrong host: bad_certificate, as openssl -verify_hostname says', () => {
    const opts = (hostname: string) => ({ trustAnchors: [certs.root!], now: now(), hostname });
    for (const good of [
      'stepwire.test',
      'STEPWIRE.test.',
      'a.wild.test',
      '198.18.0.2',
      'fd00:5757:0::2',
      '[fd00:5757::2]',
    ]) {
      expect(verifyCertificateChain(certs.leaf!, [certs.inter!], opts(good)).chain.length).toBe(3);
    }
    for (const bad of ['other.test', 'wild.test', 'a.b.wild.test', '198.18.0.3', 'fd00:5757::3', 'test']) {
      const e = codeOf(() => verifyCertificateChain(certs.leaf!, [certs.inter!], opts(bad)));
      expect(e, bad).toBe('hostname_mismatch');
    }
    expect(opensslVerdict('leaf', 'root', ['inter'], ['-verify_hostname', 'stepwire.test'])).toBe(true);
    expect(opensslRefusal('leaf', 'root', ['inter'], ['-verify_hostname', 'other.test'])).toMatch(
      /error 62 at 0 depth lookup: hostname mismatch/,
    );
    expect(opensslRefusal('leaf', 'root', ['inter'], ['-verify_ip', '198.18.0.3'])).toMatch(
      /error 64 at 0 depth lookup: IP address mismatch/,
    );
  });

  it('unknown CA (same name, different key; or no intermediate): unknown_ca', () => {
    expect(
      codeOf(() =>
        verifyCertificateChain(certs.leaf!, [certs.inter!], { trustAnchors: [certs.root2!], now: now() }),
      ),
    ).toBe('unknown_issuer');
    // A root with the right name but another key: the signature over the intermediate fails.
    const e = codeOf(() =>
      verifyCertificateChain(certs.leaf!, [certs.inter!], { trustAnchors: [certs.other!], now: now() }),
    );
    expect(['unknown_issuer', 'bad_signature']).toContain(e);
    expect(
      codeOf(() => verifyCertificateChain(certs.leaf!, [], { trustAnchors: [certs.root!], now: now() })),
    ).toBe('unknown_issuer');
    expect(opensslRefusal('leaf', 'root2', ['inter'])).toMatch(
      /error 20 at 1 depth lookup: unable to get local issuer certificate/,
    );
    expect(opensslRefusal('leaf', 'other', ['inter'])).toMatch(
      /error 20 at 1 depth lookup: unable to get local issuer certificate/,
    );
    expect(opensslRefusal('leaf', 'root', [])).toMatch(
      /error 20 at 0 depth lookup: unable to get local issuer certificate/,
    );
  });

  it('issuer without cA=true: not_a_ca (unknown_ca alert), and openssl refuses too', () => {
    let err: CertificateError | undefined;
    try {
      verifyCertificateChain(certs.leafOfNotCa!, [certs.notCa!], { trustAnchors: [certs.root!], now: now() });
    } catch (e) {
      err = e as CertificateError;
    }
    expect(err?.code).toBe('not_a_ca');
    expect(err?.alert).toBe('unknown_ca');
    expect(err?.depth).toBe(1);
    expect(opensslRefusal('leaf-notca', 'root', ['notca'])).toMatch(
      /error 79 at 1 depth lookup: invalid CA certificate/,
    );
  });

  it('bad signature (one byte flipped in the leaf’s signature or tbsCertificate): bad_certificate', () => {
    for (const provider of [nodeSignatures, pureSignatures]) {
      const raw = certs.leaf!.raw.slice();
      raw[raw.length - 10]! ^= 0x01;
      expect(
        codeOf(() =>
          verifyCertificateChain(raw, [certs.inter!], { trustAnchors: [certs.root!], now: now(), provider }),
        ),
      ).toBe('bad_signature');
      const interRaw = certs.inter!.raw.slice();
      interRaw[interRaw.length - 20]! ^= 0x80;
      expect(
        codeOf(() =>
          verifyCertificateChain(certs.leaf!, [interRaw], {
            trustAnchors: [certs.root!],
            now: now(),
            provider,
          }),
        ),
      ).toBe('bad_signature');
    }
    const raw = certs.leaf!.raw.slice();
    raw[raw.length - 10]! ^= 0x01;
    ssl.write(
      'leaf-badsig.crt',
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(raw).toString('base64')}\n-----END CERTIFICATE-----\n`,
    );
    expect(opensslRefusal('leaf-badsig', 'root', ['inter'])).toMatch(
      /error 7 at 0 depth lookup: certificate signature failure/,
    );
  });

  it('unknown critical extension: unsupported_certificate, and openssl refuses too', () => {
    const c = certs.critical!;
    expect(c.extensions.find((e) => e.oid === '1.2.3.4.5')?.critical).toBe(true);
    expect(
      codeOf(() => verifyCertificateChain(c, [certs.inter!], { trustAnchors: [certs.root!], now: now() })),
    ).toBe('unknown_critical_extension');
    expect(opensslRefusal('critical', 'root', ['inter'])).toMatch(
      /error 34 at 0 depth lookup: unhandled critical extension/,
    );
  });

  it('pathLenConstraint 0 with an intermediate below: path_length_exceeded, and openssl refuses too', () => {
    expect(
      codeOf(() =>
        verifyCertificateChain(certs.leafUnderP0!, [certs.interUnderP0!], {
          trustAnchors: [certs.rootPath0!],
          now: now(),
        }),
      ),
    ).toBe('path_length_exceeded');
    expect(opensslRefusal('leaf-p0', 'root-p0', ['inter-p0'])).toMatch(
      /error 25 at 2 depth lookup: path length constraint exceeded/,
    );
  });

  it('issuer keyUsage without keyCertSign: refused by both', () => {
    expect(
      codeOf(() =>
        verifyCertificateChain(certs.leafUnderNoSign!, [certs.interNoSign!], {
          trustAnchors: [certs.root!],
          now: now(),
        }),
      ),
    ).toBe('issuer_key_usage');
    expect(opensslRefusal('leaf-nosign', 'root', ['inter-nosign'])).toMatch(
      /error 32 at 1 depth lookup: key usage does not include certificate signing/,
    );
  });

  it('extKeyUsage clientAuth only: refused for serverAuth, accepted for clientAuth (openssl -purpose agrees)', () => {
    const base = { trustAnchors: [certs.root!], now: now() };
    expect(codeOf(() => verifyCertificateChain(certs.clientOnly!, [certs.inter!], base))).toBe(
      'ext_key_usage',
    );
    expect(
      verifyCertificateChain(certs.clientOnly!, [certs.inter!], { ...base, purpose: 'clientAuth' }).chain
        .length,
    ).toBe(3);
    expect(opensslRefusal('client-only', 'root', ['inter'], ['-purpose', 'sslserver'])).toMatch(
      /error 26 at 0 depth lookup: unsuitable certificate purpose/,
    );
    expect(opensslVerdict('client-only', 'root', ['inter'], ['-purpose', 'sslclient'])).toBe(true);
  });

  it('no subjectAltName: CN fallback only when allowed', () => {
    const base = { trustAnchors: [certs.root!], now: now(), hostname: 'stepwire.test' };
    expect(verifyCertificateChain(certs.noSan!, [certs.inter!], base).chain.length).toBe(3);
    expect(
      codeOf(() =>
        verifyCertificateChain(certs.noSan!, [certs.inter!], { ...base, commonNameFallback: false }),
      ),
    ).toBe('hostname_mismatch');
  });

  it('garbage and missing certificates', () => {
    expect(
      codeOf(() =>
        verifyCertificateChain(Uint8Array.of(0x30, 0x03, 1, 2), [], {
          trustAnchors: [certs.root!],
          now: now(),
        }),
      ),
    ).toBe('malformed');
    expect(
      codeOf(() => verifyCertificateChain(undefined, [], { trustAnchors: [certs.root!], now: now() })),
    ).toBe('no_certificate');
  });
});

describe('RFC 6125 host name rules', () => {
  const ca = createCertificateAuthority({ now: new Date() });
  const withNames = (dnsNames: string[], ipAddresses: string[] = []) =>
    createLeafCertificate(ca, { now: new Date(), dnsNames, ipAddresses, commonName: 'cn.example.test' })
      .certificate;

  it('wildcards: whole left-most label only, exactly one label, not over public-suffix-like names', () => {
    const c = withNames(['*.example.test', 'exact.test', 'f*o.partial.test', 'a.*.middle.test', '*.test']);
    expect(matchesHostname(c, 'www.example.test')).toBe(true);
    expect(matchesHostname(c, 'WWW.Example.Test')).toBe(true);
    expect(matchesHostname(c, 'example.test')).toBe(false);
    expect(matchesHostname(c, 'a.b.example.test')).toBe(false);
    expect(matchesHostname(c, 'exact.test')).toBe(true);
    expect(matchesHostname(c, 'foo.partial.test')).toBe(false);
    expect(matchesHostname(c, 'a.x.middle.test')).toBe(false);
    expect(matchesHostname(c, 'anything.test')).toBe(false);
    // SAN present: the CN is never consulted.
    expect(matchesHostname(c, 'cn.example.test')).toBe(true); // via *.example.test
    expect(matchesHostname(withNames(['only.test']), 'cn.example.test')).toBe(false);
  });

  it('IP addresses match iPAddress entries only, never DNS or wildcards', () => {
    const c = withNames(['198.18.0.2', '*.18.0.2'], ['fd00:5757::2']);
    expect(matchesHostname(c, '198.18.0.2')).toBe(false);
    expect(matchesHostname(c, 'fd00:5757::2')).toBe(true);
    expect(matchesHostname(c, 'FD00:5757:0000::0002')).toBe(true);
  });
});

describe('chains we issue', () => {
  it('RSA, Ed25519 and P-256 issuers, verified by us and by openssl', () => {
    const t = new Date();
    for (const keyType of ['P-256', 'ed25519', 'rsa2048'] as const) {
      const ca = createCertificateAuthority({ now: t, keyType, commonName: `CA ${keyType}` });
      const leaf = createLeafCertificate(ca, { now: t, dnsNames: ['stepwire.test'], keyType });
      expect(
        verifyCertificateChain(leaf.certificate, [], {
          trustAnchors: [ca.certificate],
          now: t,
          hostname: 'stepwire.test',
        }).chain.length,
      ).toBe(2);
      ssl.write(`ours-${keyType}-ca.crt`, ca.certificatePem);
      ssl.write(`ours-${keyType}-leaf.crt`, leaf.certificatePem);
      expect(
        opensslVerdict(
          `ours-${keyType}-leaf`,
          `ours-${keyType}-ca`,
          [],
          ['-verify_hostname', 'stepwire.test'],
        ),
      ).toBe(true);
    }
  });

  it('a CA with pathLen 0 cannot vouch for a sub-CA (our issuer, our verifier)', () => {
    const t = new Date();
    const ca = createCertificateAuthority({ now: t });
    const subKey = generateKey('P-256');
    const sub = issueCertificate(
      {
        subject: [['CN', 'sub']],
        notBefore: new Date(t.getTime() - 1000),
        notAfter: new Date(t.getTime() + 86_400_000),
        publicKey: publicKeyOf(subKey),
        isCA: true,
        keyUsage: ['keyCertSign'],
      },
      ca,
    );
    const leaf = createLeafCertificate(
      { ...ca, certificate: sub, privateKey: subKey },
      { now: t, dnsNames: ['stepwire.test'] },
    );
    expect(
      codeOf(() =>
        verifyCertificateChain(leaf.certificate, [sub], { trustAnchors: [ca.certificate], now: t }),
      ),
    ).toBe('path_length_exceeded');
  });
});

describe('verifying hostile chains', () => {
  const t = new Date();
  const ca = createCertificateAuthority({ now: t });
  const sub = (() => {
    const key = generateKey('P-256');
    const cert = issueCertificate(
      {
        subject: [['CN', 'sub CA']],
        notBefore: new Date(t.getTime() - 1000),
        notAfter: new Date(t.getTime() + 86_400_000),
        publicKey: publicKeyOf(key),
        isCA: true,
        keyUsage: ['keyCertSign'],
      },
      { certificate: ca.certificate, privateKey: ca.privateKey },
    );
    return { ...ca, certificate: cert, privateKey: key };
  })();
  // The CA above has pathLen 0; trust the sub-CA's issuer through a fresh root without a limit.
  const root = createCertificateAuthority({ now: t });
  const leaf = createLeafCertificate(root, { now: t, dnsNames: ['stepwire.test'] });
  const opts = { trustAnchors: [root.certificate, ca.certificate], now: t, hostname: 'stepwire.test' };

  it('the unmutated chain verifies', () => {
    expect(verifyCertificateChain(leaf.certificateDer, [sub.certificate.raw], opts).chain.length).toBe(2);
  });

  test.prop([fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 255 })], { numRuns: 400 })(
    'a one-byte mutation of the leaf or the intermediate: verified only if unchanged, else CertificateError',
    (which, at, value) => {
      const l = leaf.certificateDer.slice();
      const x = sub.certificate.raw.slice();
      const target = which ? l : x;
      const changed = target[at % target.length] !== value;
      target[at % target.length] = value;
      try {
        verifyCertificateChain(l, [x], opts);
        // The leaf chains to `root` directly, so a changed extra certificate may be ignored
        // if it still parses; a changed leaf must never verify.
        expect(which && changed).toBe(false);
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        expect(changed).toBe(true);
      }
    },
  );
});

describe('bounded work', () => {
  it('32 certificates that all claim the same name: the search stops early, with few signature checks', () => {
    const t = new Date();
    const loop = Array.from({ length: 32 }, () => {
      const key = generateKey('P-256');
      const cert = issueCertificate(
        {
          subject: [['CN', 'Loop']],
          notBefore: new Date(t.getTime() - 1000),
          notAfter: new Date(t.getTime() + 86_400_000),
          publicKey: publicKeyOf(key),
          isCA: true,
        },
        { privateKey: key },
      );
      // Without key identifiers every certificate may have issued every other.
      return { ...decodeCertificate(cert.raw), subjectKeyIdentifier: undefined };
    });
    const anchorKey = generateKey('P-256');
    const anchor = issueCertificate(
      {
        subject: [['CN', 'Loop']],
        notBefore: new Date(t.getTime() - 1000),
        notAfter: new Date(t.getTime() + 86_400_000),
        publicKey: publicKeyOf(anchorKey),
        isCA: true,
      },
      { privateKey: anchorKey },
    );
    const leaf = createLeafCertificate(
      {
        ...createCertificateAuthority({ now: t }),
        certificate: { ...loop[0]!, subjectKeyIdentifier: undefined },
      },
      { now: t, dnsNames: ['stepwire.test'] },
    ).certificate;
    let calls = 0;
    const counting = {
      ...nodeSignatures,
      verify: (...a: Parameters<typeof nodeSignatures.verify>) => {
        calls++;
        return nodeSignatures.verify(...a);
      },
    };
    const code = codeOf(() =>
      verifyCertificateChain({ ...leaf, authorityKeyIdentifier: undefined }, loop, {
        trustAnchors: [anchor],
        now: t,
        provider: counting,
      }),
    );
    expect(['bad_signature', 'unknown_issuer', 'chain_too_long']).toContain(code);
    // 32 candidates and an anchor: each (child, issuer) pair is checked at most once.
    expect(calls).toBeLessThanOrEqual(33 * 33);
  });
});
