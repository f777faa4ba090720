/** PEM (RFC 7468) text: blocks, certificates in PEM and private keys in PEM. */
import { decodePrivateKeyPem } from '../../packages/tls/src/pki/keys.ts';
import { decodeCertificatesPem, decodePem } from '../../packages/tls/src/pki/x509.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  const text = new TextDecoder('latin1').decode(data);
  only(() => decodePem(text));
  only(() => decodeCertificatesPem(text));
  only(() => decodePrivateKeyPem(text));
}
export const maxLen = 8192;
