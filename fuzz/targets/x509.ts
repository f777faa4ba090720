/** X.509 certificates (RFC 5280 §4.1) in DER: the certificate, and a Name and an SPKI alone. */
import { decodeCertificate, decodeName, decodeSpki } from '../../packages/tls/src/pki/x509.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeCertificate(data));
  only(() => decodeName(data));
  only(() => decodeSpki(data));
}
export const maxLen = 8192;
