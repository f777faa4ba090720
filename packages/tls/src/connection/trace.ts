/**
 * Handshake messages as trace lines: the name the RFC gives each message, the section that
 * defines it, and a one-line summary of its fields (suites, groups, SNI, ...) for the ladder.
 * Secrets never appear here.
 */
import { CipherSuite, NamedGroup, SignatureScheme } from '../codec/common.ts';
import type { HandshakeMessage } from '../codec/handshake.ts';

const MESSAGE_NAMES: Record<HandshakeMessage['msgType'], string> = {
  client_hello: 'ClientHello',
  server_hello: 'ServerHello',
  hello_retry_request: 'HelloRetryRequest',
  encrypted_extensions: 'EncryptedExtensions',
  certificate_request: 'CertificateRequest',
  certificate: 'Certificate',
  certificate_verify: 'CertificateVerify',
  finished: 'Finished',
  new_session_ticket: 'NewSessionTicket',
  end_of_early_data: 'EndOfEarlyData',
  key_update: 'KeyUpdate',
  compressed_certificate: 'CompressedCertificate',
};

export function messageName(m: HandshakeMessage): string {
  return MESSAGE_NAMES[m.msgType];
}

export const MESSAGE_RFC: Record<HandshakeMessage['msgType'], string> = {
  client_hello: 'RFC 8446 §4.1.2',
  server_hello: 'RFC 8446 §4.1.3',
  hello_retry_request: 'RFC 8446 §4.1.4',
  encrypted_extensions: 'RFC 8446 §4.3.1',
  certificate_request: 'RFC 8446 §4.3.2',
  certificate: 'RFC 8446 §4.4.2',
  certificate_verify: 'RFC 8446 §4.4.3',
  finished: 'RFC 8446 §4.4.4',
  new_session_ticket: 'RFC 8446 §4.6.1',
  end_of_early_data: 'RFC 8446 §4.5',
  key_update: 'RFC 8446 §4.6.3',
  compressed_certificate: 'RFC 8879 §4',
};

/**
 * A one-line description and fields for traces: negotiated parameters only, never key
 * shares' private halves, PSKs, binders, tickets or Finished values.
 */
const hex16 = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;

/** The RFC's name for a code point, for a reader of the ladder; hex when we have none. */
function nameIn(table: Record<string, number>): (v: number) => string {
  const names = new Map(Object.entries(table).map(([k, v]) => [v, k]));
  return (v) => names.get(v) ?? hex16(v);
}
const suiteName = nameIn(CipherSuite);
const groupName = nameIn(NamedGroup);
const schemeName = nameIn(SignatureScheme);

export function describeMessage(m: HandshakeMessage): { detail: string; fields: Record<string, unknown> } {
  switch (m.msgType) {
    case 'client_hello': {
      const sni = m.extensions.find((e) => e.type === 'server_name');
      const ks = m.extensions.find((e) => e.type === 'key_share');
      const groups = ks && 'clientShares' in ks ? ks.clientShares.map((s) => hex16(s.group)) : [];
      const psk = m.extensions.some((e) => e.type === 'pre_shared_key');
      const fields = { suites: m.cipherSuites.map(hex16), shares: groups, sni: sni?.hostName, psk };
      return {
        detail: `suites=${m.cipherSuites.map(suiteName).join(',')} shares=${ks && 'clientShares' in ks ? ks.clientShares.map((x) => groupName(x.group)).join(',') : ''}${sni?.hostName ? ` sni=${sni.hostName}` : ''}${psk ? ' psk' : ''}`,
        fields,
      };
    }
    case 'server_hello':
    case 'hello_retry_request': {
      const ks = m.extensions.find((e) => e.type === 'key_share');
      const group =
        ks && 'serverShare' in ks
          ? ks.serverShare.group
          : ks && 'selectedGroup' in ks
            ? ks.selectedGroup
            : undefined;
      const psk = m.extensions.some((e) => e.type === 'pre_shared_key');
      const fields = {
        suite: hex16(m.cipherSuite),
        group: group === undefined ? undefined : hex16(group),
        psk,
      };
      return {
        detail: `suite=${suiteName(m.cipherSuite)}${group === undefined ? '' : ` group=${groupName(group)}`}${psk ? ' psk' : ''}`,
        fields,
      };
    }
    case 'certificate':
      return { detail: `${m.certificateList.length} cert(s)`, fields: { count: m.certificateList.length } };
    case 'certificate_verify':
      return { detail: `scheme=${schemeName(m.algorithm)}`, fields: { scheme: m.algorithm } };
    case 'new_session_ticket':
      return { detail: `lifetime=${m.ticketLifetime}s`, fields: { lifetime: m.ticketLifetime } };
    case 'key_update':
      return {
        detail: m.requestUpdate ? 'update_requested' : 'update_not_requested',
        fields: { requestUpdate: m.requestUpdate },
      };
    default:
      return { detail: '', fields: {} };
  }
}
