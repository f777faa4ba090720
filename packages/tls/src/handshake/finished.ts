/**
 * The check of a peer's Finished (RFC 8446 §4.4.4), the same for both roles and, on the
 * server, for post-handshake authentication (§4.6.2): verify_data is the HMAC, under the
 * finished key of `baseKey`, of the transcript hash so far.
 */
import { alert, macEqual } from '../auth.ts';
import { AlertDescription } from '../codec/alert.ts';
import type { CryptoProvider, HashName } from '../crypto/provider.ts';
import { finishedVerifyData, type Transcript } from '../keyschedule.ts';
import type { MessageOf } from './machine.ts';

export function checkFinished(
  crypto: CryptoProvider,
  from: 'client' | 'server',
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
      `${from} Finished of ${msg.verifyData.length} bytes, not ${expected.length}`,
    );
  if (!macEqual(msg.verifyData, expected))
    alert(AlertDescription.decrypt_error, `${from} Finished does not verify`);
}
