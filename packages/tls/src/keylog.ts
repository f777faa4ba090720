/**
 * NSS key log format (SSLKEYLOGFILE), the one place secrets may leave the stack: Wireshark
 * and tshark read it to decrypt our captures. Traces never carry secrets.
 * Format: `<LABEL> <client_random hex> <secret hex>`, one line per secret.
 */
import { toHex } from '@stepwire/wire';

export type KeyLogLabel =
  | 'CLIENT_EARLY_TRAFFIC_SECRET'
  | 'EARLY_EXPORTER_SECRET'
  | 'CLIENT_HANDSHAKE_TRAFFIC_SECRET'
  | 'SERVER_HANDSHAKE_TRAFFIC_SECRET'
  | `CLIENT_TRAFFIC_SECRET_${number}`
  | `SERVER_TRAFFIC_SECRET_${number}`
  | 'EXPORTER_SECRET';

/** Receives each key log line (without a newline); append it to an SSLKEYLOGFILE to decrypt a capture. */
export type KeyLogCallback = (line: string) => void;

export function keyLogLine(label: KeyLogLabel, clientRandom: Uint8Array, secret: Uint8Array): string {
  if (clientRandom.length !== 32) throw new RangeError('client_random must be 32 bytes');
  return `${label} ${toHex(clientRandom)} ${toHex(secret)}`;
}
