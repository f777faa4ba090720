/**
 * The server's checks of what the client proves, the same during the handshake and after
 * it (RFC 8446 §4.6.2): its CertificateVerify (§4.4.3) and its Finished (§4.4.4).
 */
import { alert, type CertificateVerifier, certificateVerifyInput, macEqual } from '../auth.ts';
import { AlertDescription } from '../codec/alert.ts';
import type { CryptoProvider, HashName } from '../crypto/provider.ts';
import type { MessageOf } from '../handshake/machine.ts';
import { finishedVerifyData, type Transcript } from '../keyschedule.ts';

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

/** RFC 8446 §4.4.4: verify_data of Hash.length bytes under `baseKey`'s finished key. */
export function checkClientFinished(
  crypto: CryptoProvider,
  baseKey: Uint8Array,
  msg: MessageOf<'finished'>,
  transcript: Transcript,
  hash: HashName,
): void {
  const expected = finishedVerifyData(crypto, hash, baseKey, transcript.hash(crypto, hash));
  // RFC 8446 §4.4.4/§6.2: verify_data is Hash.length bytes; another length is a message that
  // does not decode (decode_error), a wrong value of the right length a decrypt_error.
  if (msg.verifyData.length !== expected.length)
    alert(
      AlertDescription.decode_error,
      `client Finished of ${msg.verifyData.length} bytes, not ${expected.length}`,
    );
  if (!macEqual(msg.verifyData, expected))
    alert(AlertDescription.decrypt_error, 'client Finished does not verify');
}
