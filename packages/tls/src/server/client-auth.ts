/**
 * The server's check of the client's CertificateVerify (RFC 8446 §4.4.3), the same during the
 * handshake and after it (§4.6.2); its Finished is checked as the client checks ours
 * (handshake/finished.ts).
 */
import { alert, type CertificateVerifier, certificateVerifyInput } from '../auth.ts';
import { AlertDescription } from '../codec/alert.ts';
import type { CryptoProvider, HashName } from '../crypto/provider.ts';
import type { MessageOf } from '../handshake/machine.ts';
import type { Transcript } from '../keyschedule.ts';

/** RFC 8446 §4.4.3: a scheme we asked for, over the transcript through the client's Certificate. */
export function checkClientCertificateVerify(
  crypto: CryptoProvider,
  verifier: CertificateVerifier,
  chain: readonly [Uint8Array, ...Uint8Array[]],
  msg: MessageOf<'certificate_verify'>,
  transcript: Transcript,
  hash: HashName,
): void {
  if (!verifier.signatureSchemes.includes(msg.algorithm))
    alert(AlertDescription.illegal_parameter, 'CertificateVerify scheme not requested');
  const content = certificateVerifyInput('client', transcript.hash(crypto, hash));
  if (!verifier.verifySignature(chain[0], msg.algorithm, content, msg.signature))
    alert(AlertDescription.decrypt_error, 'client CertificateVerify signature does not verify');
}
